"""``polymodal <domain> <verb> train|evaluate|predict`` for every registered scenario.

Plugins get these shortcuts without writing CLI code; a plugin that adds its own
``<domain>`` group keeps it, and the scenario verbs are added to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from polymodal.cli.commands import (
    device_option,
    evaluate_and_print,
    json_option,
    out_dir_option,
    set_option,
)
from polymodal.cli.model_group import predict_command
from polymodal.cli.output import emit_json, print_metrics


def with_train_options(train_options: dict[str, str]) -> Any:
    """Click options for a scenario's ``train_options`` (see ``Scenario``); the command gets
    their values as spec overrides in ``option_overrides``."""

    def decorate(command: Any) -> Any:
        for option, template in reversed(train_options.items()):
            flag = "{}" not in template
            command = click.option(f"--{option}", option.replace("-", "_"), is_flag=flag,
                                   default=None if not flag else False,
                                   help=f"Sets {template.replace('{}', option.upper())}.")(
                command)
        return command

    return decorate


def option_overrides(train_options: dict[str, str], values: dict[str, Any]) -> list[str]:
    out = []
    for option, template in train_options.items():
        value = values.pop(option.replace("-", "_"), None)
        if value is None or value is False:
            continue
        out.append(template if "{}" not in template else template.replace("{}", str(value)))
    return out


def scenario_group(name: str, description: str,
                   train_options: dict[str, str] | None = None) -> click.Group:
    domain, _, verb = name.partition(".")
    train_options = train_options or {}

    @click.group(verb, help=f"{description} (scenario {name}).")
    def group() -> None:
        pass

    @group.command("train")
    @click.option("--data", "train_path", default=None,
                  help="Training data (default: the embedded data set).")
    @click.option("--test", "test_path", default=None, help="Held-out test data.")
    @out_dir_option(f"runs/{domain}-{verb}")
    @set_option
    @click.option("--quick", is_flag=True, help="Tiny smoke run.")
    @click.option("--resume", is_flag=True, help="Continue from the last checkpoint of OUT.")
    @device_option
    @json_option
    @with_train_options(train_options)
    def train(train_path: str | None, test_path: str | None, out_dir: str,
              overrides: tuple[str, ...], quick: bool, resume: bool, device: str | None,
              as_json: bool, **options: Any) -> None:
        """Train on the embedded default data, or on --data."""
        from polymodal.scenario import load_scenario, run_scenario

        extra = option_overrides(train_options, options)
        result, _ = run_scenario(load_scenario(name), Path(out_dir), quick=quick,
                                 train_path=train_path, test_path=test_path,
                                 overrides=extra + list(overrides), device=device,
                                 progress=not as_json, resume=resume)
        held_out = result.metrics.get("test") or result.metrics.get("validation") or {}
        if as_json:
            emit_json({"out": str(result.out_dir), "metrics": result.metrics})
        else:
            print_metrics(f"{name}: held-out metrics ({result.out_dir})", held_out)

    @group.command("evaluate")
    @click.argument("model_dir", type=click.Path())
    @click.option("--data", "data_path", default=None,
                  help="Labelled data (default: the embedded test split).")
    @device_option
    @json_option
    def evaluate(model_dir: str, data_path: str | None, device: str | None,
                 as_json: bool) -> None:
        """Evaluate a model on --data or on the embedded test split."""
        from polymodal.data.readers import read_records
        from polymodal.scenario import load_scenario

        records = (read_records(data_path) if data_path
                   else load_scenario(name).load_demo().test)
        evaluate_and_print(model_dir, records, device, as_json, f"{name}: {model_dir}")

    def primary_input() -> str | None:
        from polymodal.scenario import load_scenario

        return load_scenario(name).primary_input

    group.add_command(predict_command(name, primary_input))
    return group


def add_scenario_commands(cli: click.Group) -> None:
    from polymodal.registry import get_registry

    for entry in get_registry().list("scenario"):
        domain, _, verb = entry.name.partition(".")
        if not verb:
            continue
        group = cli.commands.get(domain)
        if group is None:
            group = click.Group(domain, help=f"{domain} scenarios.")
            cli.add_command(group)
        if isinstance(group, click.Group) and verb not in group.commands:
            group.add_command(scenario_group(entry.name, entry.description))
