"""``polymodal <domain> <verb> train|evaluate|predict`` for every registered scenario.

Plugins get these without writing CLI code. A plugin that registers a ``<domain>`` group
(or a ``<verb>`` group in it) for verbs that really are extra (``index``, ``query``,
``similar`` ...) keeps it, and the scenario's train/evaluate/predict are added beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from polymodal.cli.commands import (
    device_option,
    draw_option,
    evaluate_and_print,
    grid_option,
    json_option,
    out_dir_option,
    precision_option,
    set_option,
)
from polymodal.cli.output import emit_json, print_comparison, print_metrics


def with_train_options(train_options: dict[str, str]) -> Any:
    """Click options for a scenario's ``train_options``; the command gets their values as
    spec overrides in ``option_overrides``."""

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


def train_command(name: str, train_options: dict[str, str] | None = None) -> click.Command:
    domain, _, verb = name.partition(".")
    train_options = train_options or {}

    @click.command("train")
    @click.option("--data", "train_path", default=None,
                  help="Training data (default: the embedded data set).")
    @click.option("--test", "test_path", default=None, help="Held-out test data.")
    @out_dir_option(f"runs/{domain}-{verb}")
    @set_option
    @click.option("--quick", is_flag=True, help="Tiny smoke run.")
    @click.option("--resume", is_flag=True, help="Continue from the last checkpoint of OUT.")
    @click.option("--nproc-per-node", type=int, default=1, show_default=True,
                  help="Processes (torch.distributed: one per GPU, or gloo on CPU); "
                       "train.batch_size is then the global batch.")
    @device_option
    @json_option
    @with_train_options(train_options)
    def train(train_path: str | None, test_path: str | None, out_dir: str,
              overrides: tuple[str, ...], quick: bool, resume: bool, nproc_per_node: int,
              device: str | None, as_json: bool, **options: Any) -> None:
        """Train on the embedded default data, or on --data."""
        from polymodal.scenario import load_scenario, run_scenario, scenario_spec

        scenario = load_scenario(name)
        extra = option_overrides(train_options, options) + list(overrides)
        scenario_spec(scenario, extra, quick)  # a bad spec fails before any process starts
        if nproc_per_node > 1:
            _launch(scenario, nproc_per_node, train_path=train_path, test_path=test_path,
                    out_dir=out_dir, overrides=extra, quick=quick, resume=resume,
                    device=device, as_json=as_json)
            return
        result, _ = run_scenario(scenario, Path(out_dir), quick=quick,
                                 train_path=train_path, test_path=test_path,
                                 overrides=extra, device=device,
                                 progress=not as_json, resume=resume)
        if not result.metrics:  # a non-zero rank under torchrun: rank 0 reports
            return
        held_out = result.metrics.get("test") or result.metrics.get("validation") or {}
        # A spec's run compares the model with its baselines and, with ``ablation``, with a
        # model per input; a scenario's own fit reports its baselines in its metrics.
        comparisons = dict(result.comparisons)
        baselines = result.metrics.get("baselines") or {}
        if not comparisons and baselines and held_out:
            comparisons["the model beside its baselines"] = {"model": held_out, **baselines}
        if as_json:
            emit_json({"out": str(result.out_dir), "metrics": result.metrics,
                       "comparisons": comparisons})
        else:
            print_metrics(f"{name}: held-out metrics ({result.out_dir})", held_out)
            for heading, columns in comparisons.items():
                print_comparison(f"{name}: {heading}", columns)

    return train


def _launch(scenario: Any, nproc_per_node: int, *, train_path: str | None,
            test_path: str | None, out_dir: str, overrides: list[str], quick: bool,
            resume: bool, device: str | None, as_json: bool) -> None:
    """The scenario's train verb in ``nproc_per_node`` processes under torchrun."""
    from polymodal.distributed import launch
    from polymodal.errors import PolymodalError

    if scenario.fit is not None and not scenario.distributed:
        raise PolymodalError(f"{scenario.name} trains in one process (--nproc-per-node is "
                             "for spec scenarios and those that declare distributed "
                             "training)")
    domain, _, verb = scenario.name.partition(".")
    worker = ["--command", domain, verb, "train", "--out", out_dir,
              *(["--data", train_path] if train_path else []),
              *(["--test", test_path] if test_path else []),
              *[f"--set={o}" for o in overrides], *(["--quick"] if quick else []),
              *(["--resume"] if resume else []), *(["--json"] if as_json else []),
              *([f"--device={device}"] if device else [])]
    launch(worker, nproc_per_node=nproc_per_node)


def evaluate_command(name: str) -> click.Command:
    @click.command("evaluate")
    @click.argument("model_dir", type=click.Path())
    @click.option("--data", "data_path", default=None,
                  help="Labelled data (default: the embedded test split).")
    @device_option
    @precision_option
    @json_option
    def evaluate(model_dir: str, data_path: str | None, device: str | None, precision: str,
                 as_json: bool) -> None:
        """Evaluate a model on --data or on the embedded test split."""
        from polymodal.data.readers import read_records
        from polymodal.scenario import embedded_data, load_scenario, model_spec

        scenario = load_scenario(name)
        if data_path:
            records = (scenario.read_data or read_records)(data_path)
        else:
            records = embedded_data(scenario, model_spec(scenario, model_dir)).test
        evaluate_and_print(model_dir, records, device, as_json, f"{name}: {model_dir}",
                           precision)

    return evaluate


def predict_command(name: str, primary_input: Callable[[], str | None]) -> click.Command:
    """``predict MODEL_DIR [VALUES...] [--input F]``: values fill the scenario's primary
    input (``primary_input()``, asked only when values are given)."""

    @click.command("predict")
    @click.argument("model_dir", type=click.Path())
    @click.argument("values", nargs=-1)
    @click.option("--input", "input_path", default=None, help="Records (JSONL, CSV).")
    @click.option("--batch-size", default=64, show_default=True)
    @click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
                  help="For predictions that are files (generated images): the directory "
                       "to write them to (new or empty).")
    @grid_option
    @draw_option
    @device_option
    @precision_option
    @json_option
    def predict(model_dir: str, values: tuple[str, ...], input_path: str | None,
                batch_size: int, out_dir: str | None, grid: bool, draw_dir: str | None,
                device: str | None, precision: str, as_json: bool) -> None:
        """Predict for records in --input, or for VALUES given on the command line."""
        from polymodal.cli.commands import predict_and_print
        from polymodal.data.readers import read_records
        from polymodal.errors import DataError

        if input_path:
            records = read_records(input_path)
        elif values:
            field = primary_input()
            if field is None:
                raise DataError(f"{name} takes records from --input only")
            records = [{field: v} for v in values]
        else:
            raise DataError("give --input FILE or values to predict")
        predict_and_print(model_dir, records, device, batch_size, precision, out_dir, grid,
                          draw_dir)

    return predict


def scenario_commands(name: str, train_options: dict[str, str] | None = None
                      ) -> list[click.Command]:
    def primary_input() -> str | None:
        from polymodal.scenario import load_scenario

        return load_scenario(name).primary_input

    return [train_command(name, train_options), evaluate_command(name),
            predict_command(name, primary_input)]


def scenario_group(name: str, description: str,
                   train_options: dict[str, str] | None = None) -> click.Group:
    _, _, verb = name.partition(".")
    group = click.Group(verb, help=f"{description} (scenario {name}).")
    for command in scenario_commands(name, train_options):
        group.add_command(command)
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
        if not isinstance(group, click.Group):
            continue
        existing = group.commands.get(verb)
        if existing is None:
            group.add_command(scenario_group(entry.name, entry.description))
        elif isinstance(existing, click.Group):  # the plugin's extra verbs stay
            for command in scenario_commands(entry.name):
                if command.name not in existing.commands:
                    existing.add_command(command)
