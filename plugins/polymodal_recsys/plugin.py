"""Hook implementations of the recommendation plugin (no heavy imports at load)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from polymodal.plugin import RegisterModality, RegisterScenario, hookimpl

if TYPE_CHECKING:
    import click

# The range of the plugin API this plugin is written for (polymodal.plugin.API_VERSION).
POLYMODAL_API = ">=1.0,<2"


@hookimpl
def register_modalities(register: RegisterModality) -> None:
    register("id", value_type=str | int, expects="a user or item id (a string or an integer)",
             samples=["u1", "u2"], description="a user or item id")
    register("id-list", wire="list", value_type=list[str | int],
             expects="a list of ids (strings or integers)", samples=[["i1"], ["i1", "i2"]],
             description="ids a user interacted with (a recommender's liked items)")


@hookimpl
def register_scenarios(register: RegisterScenario) -> None:
    register("recsys.cf", "polymodal_recsys.scenarios:cf_scenario",
             description="implicit-feedback CF with implicit (embedded: MovieLens)")
    register("recsys.hybrid", "polymodal_recsys.scenarios:hybrid_scenario",
             description="CF + item content for cold-start items (MovieLens titles, genres)")


@hookimpl
def register_commands(cli: click.Group) -> None:
    from polymodal_recsys.cli import recsys_group

    cli.add_command(recsys_group())
