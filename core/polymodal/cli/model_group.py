"""``train|evaluate|predict`` commands for a scenario that trains its own kind of model
(token classification, span extraction, generation ...) rather than a spec-trained
encoder -> fusion -> head network. The scenario supplies the training function and its
embedded held-out data; evaluation and prediction go through ``polymodal.load``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from polymodal.cli.commands import device_option, json_option, out_dir_option, set_option
from polymodal.cli.output import emit_json, emit_jsonl, print_metrics
from polymodal.records import Record

# train(out_dir, data=, test=, overrides=, quick=, device=, log=) -> metrics
TrainFunction = Callable[..., dict[str, Any]]


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}


def model_group(scenario: str, description: str, *, train: TrainFunction,
                held_out: Callable[[], list[Record]], primary_input: str | None = None,
                data_help: str = "Training data.") -> click.Group:
    domain, _, verb = scenario.partition(".")

    @click.group(verb, help=f"{description} (scenario {scenario}).")
    def group() -> None:
        pass

    @group.command("train")
    @click.option("--data", default=None, help=f"{data_help} Default: the embedded data.")
    @click.option("--test", default=None, help="Held-out data, reported at the end.")
    @out_dir_option(f"runs/{domain}-{verb}")
    @set_option
    @click.option("--quick", is_flag=True, help="Tiny smoke run.")
    @device_option
    @json_option
    def train_cmd(data: str | None, test: str | None, out_dir: str,
                  overrides: tuple[str, ...], quick: bool, device: str | None,
                  as_json: bool) -> None:
        """Train; held-out metrics at the end."""
        metrics = train(Path(out_dir), data=data, test=test, overrides=list(overrides),
                        quick=quick, device=device, log=None if as_json else click.echo)
        if as_json:
            emit_json({"out": out_dir, **{k: v for k, v in metrics.items() if k != "history"}})
        else:
            print_metrics(f"{scenario}: {out_dir}", headline(metrics.get("test", {})))

    @group.command("evaluate")
    @click.argument("model_dir", type=click.Path())
    @click.option("--data", default=None, help="Labelled data (default: the embedded test "
                  "split).")
    @device_option
    @json_option
    def evaluate_cmd(model_dir: str, data: str | None, device: str | None,
                     as_json: bool) -> None:
        """Held-out metrics of a trained model."""
        import polymodal
        from polymodal.data.readers import read_records

        model = polymodal.load(model_dir, device=device)
        metrics = model.evaluate(read_records(data) if data else held_out())
        if as_json:
            emit_json(metrics)
        else:
            print_metrics(f"{scenario}: {model_dir}", headline(metrics))

    group.add_command(predict_command(scenario, lambda: primary_input))
    return group


def predict_command(scenario: str, primary_input: Callable[[], str | None]) -> click.Command:
    """``predict MODEL_DIR [VALUES...] [--input F]``: values fill the scenario's primary
    input (``primary_input()``, asked only when values are given)."""

    @click.command("predict")
    @click.argument("model_dir", type=click.Path())
    @click.argument("values", nargs=-1)
    @click.option("--input", "input_path", default=None, help="Records (JSONL, CSV).")
    @device_option
    @json_option
    def predict_cmd(model_dir: str, values: tuple[str, ...], input_path: str | None,
                    device: str | None, as_json: bool) -> None:
        """Predict for records in --input, or for VALUES given on the command line."""
        import polymodal
        from polymodal.data.readers import read_records
        from polymodal.errors import DataError

        if input_path:
            records = read_records(input_path)
        elif values:
            field = primary_input()
            if field is None:
                raise DataError(f"{scenario} takes records from --input only")
            records = [{field: v} for v in values]
        else:
            raise DataError("give --input FILE or values to predict")
        emit_jsonl(polymodal.load(model_dir, device=device).predict(records))

    return predict_cmd
