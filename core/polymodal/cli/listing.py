"""``polymodal plugins | components | scenarios``: listings that import no torch."""

from __future__ import annotations

import click

from polymodal.cli.output import emit_json, print_table
from polymodal.registry import KINDS


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_cmd(as_json: bool) -> None:
    """List plugins: name, version, hooks, status (loaded / failed / disabled)."""
    from polymodal.plugins import get_plugin_manager

    infos = list(get_plugin_manager().infos.values())
    if as_json:
        emit_json([info.to_json() for info in infos])
        return
    print_table("plugins", ["name", "version", "status", "hooks / error"],
                [[i.name, i.version or "", i.status, i.error or ", ".join(i.hooks)]
                 for i in infos])


@click.command("components")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind.")
@click.option("--pattern", default="*", show_default=True, help="Glob on the name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def components_cmd(kind: str | None, pattern: str, as_json: bool) -> None:
    """List registered encoders, fusions, tasks, readers and scenarios."""
    from polymodal.registry import get_registry

    entries = get_registry().list(kind, pattern)
    if as_json:
        emit_json([e.to_json() for e in entries])
        return
    print_table("components", ["kind", "name", "plugin", "modality", "description"],
                [[e.kind, e.name, e.plugin, e.modality or "", e.description] for e in entries])


@click.command("scenarios")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def scenarios_cmd(as_json: bool) -> None:
    """List scenarios (domain.verb) and the plugins providing them."""
    from polymodal.registry import get_registry

    entries = get_registry().list("scenario")
    if as_json:
        emit_json([{"name": e.name, "plugin": e.plugin, "description": e.description}
                   for e in entries])
        return
    print_table("scenarios", ["name", "plugin", "description"],
                [[e.name, e.plugin, e.description] for e in entries])
