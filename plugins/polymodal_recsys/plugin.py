"""Hook implementations of the recommendation plugin (no heavy imports at load)."""

from __future__ import annotations

from typing import Any

from polymodal import hookimpl


@hookimpl
def register_scenarios(register: Any) -> None:
    register("recsys.cf", "polymodal_recsys.scenarios:cf_scenario",
             description="implicit-feedback CF with implicit (embedded: MovieLens)")
    register("recsys.hybrid", "polymodal_recsys.scenarios:hybrid_scenario",
             description="CF + item content for cold-start items (MovieLens titles, genres)")


@hookimpl
def register_commands(cli: Any) -> None:
    from polymodal_recsys.cli import recsys_group

    cli.add_command(recsys_group())
