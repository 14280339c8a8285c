"""Entry point of the ``polymodal`` CLI.

Errors a user can fix (``PolymodalError``) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from polymodal import __version__
from polymodal.cli import commands, listing, scenarios
from polymodal.errors import PolymodalError, TrainingInterrupted


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="polymodal")
def cli() -> None:
    """polymodal: train, evaluate, predict with and serve multimodal models."""


for command in (listing.plugins_cmd, listing.plugin_group, listing.components_cmd,
                listing.scenarios_cmd,
                commands.train_cmd, commands.evaluate_cmd, commands.predict_cmd,
                commands.demo_cmd, commands.serve_cmd, commands.export_cmd):
    cli.add_command(command)


def build_cli() -> click.Group:
    """The root group with plugin commands and scenario shortcuts added."""
    from polymodal.plugins import get_plugin_manager

    manager = get_plugin_manager()
    for plugin_name, function in manager.impls("register_commands"):
        try:
            function(cli=cli)
        except Exception as exc:  # a broken plugin must not break the CLI
            info = manager.infos.get(plugin_name)
            if info is not None:
                info.status, info.error = "failed", f"register_commands: {exc}"
    try:
        scenarios.add_scenario_commands(cli)
    except PolymodalError as exc:
        click.echo(f"warning: scenario commands unavailable: {exc}", err=True)
    return cli


def main(argv: list[str] | None = None) -> Any:
    group = build_cli()
    try:
        return group.main(args=argv, prog_name="polymodal", standalone_mode=False)
    except TrainingInterrupted as exc:
        click.echo(f"interrupted: {exc}", err=True)
        sys.exit(130)
    except PolymodalError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line, as for every other user mistake
        command = exc.ctx.command_path if exc.ctx is not None else "polymodal"
        click.echo(f"error: {exc.format_message()} (see '{command} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
