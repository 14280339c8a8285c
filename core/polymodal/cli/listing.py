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
@click.option("--kind", type=click.Choice([*KINDS, "modality"]), help="Only this kind.")
@click.option("--pattern", default="*", show_default=True, help="Glob on the name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def components_cmd(kind: str | None, pattern: str, as_json: bool) -> None:
    """List registered modalities, encoders, fusions, tasks, readers and scenarios."""
    from polymodal.registry import get_registry

    registry = get_registry()
    modalities = registry.modalities(pattern) if kind in (None, "modality") else []
    entries = registry.list(kind, pattern) if kind != "modality" else []
    if as_json:
        emit_json([m.to_json() for m in modalities] + [e.to_json() for e in entries])
        return
    print_table("components", ["kind", "name", "plugin", "modality / wire", "description"],
                [["modality", m.name, m.plugin, m.wire, m.description] for m in modalities]
                + [[e.kind, e.name, e.plugin, e.modality or "", e.description]
                   for e in entries])


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


@click.group("plugin")
def plugin_group() -> None:
    """Write a new plugin (``polymodal plugins`` lists the installed ones)."""


@plugin_group.command("new")
@click.argument("name")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Directory to write (default: ./polymodal-NAME); must be new or empty.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugin_new_cmd(name: str, out_dir: str | None, as_json: bool) -> None:
    """Write a working plugin package NAME: a modality, an encoder, a fusion, a task and a
    scenario with embedded data, a README and tests that use polymodal.testing."""
    from polymodal.scaffold import new_plugin, template_files

    target = new_plugin(name, out_dir)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    if as_json:
        emit_json({"name": name, "out": str(target), "files": files,
                   "scenario": f"{name}.inside"})
        return
    click.echo(f"wrote {target}/ ({len(template_files())} files): plugin {name!r}, "
               f"scenario {name}.inside")
    click.echo("next:")
    click.echo(f"  pip install --no-deps --no-build-isolation -e {target}")
    click.echo(f"  polymodal demo {name}.inside --quick")
    click.echo(f"  cd {target} && python -m pytest")
