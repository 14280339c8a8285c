"""``nlp.qa`` as a scenario: its default spec, embedded data, demo, loader and
``polymodal nlp qa train|evaluate|predict``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polymodal.records import Record
from polymodal.scenario import DemoSummary, Scenario


@dataclass
class SpanKind:
    """What differs between the token-level scenarios; functions as ``module:attr``
    strings so that building the CLI imports no torch."""

    scenario: str
    spec_name: str
    description: str
    embedded_ref: str
    train_ref: str
    load_ref: str
    primary_input: str | None
    examples: list[Record]
    quick_records: int = 48
    # Overrides of the TokenSpec defaults that this scenario's embedded data wants.
    defaults: tuple[str, ...] = ()

    def embedded(self) -> tuple[list[Record], list[Record]]:
        return _resolve(self.embedded_ref)()

    def train(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return _resolve(self.train_ref)(*args, **kwargs)

    def load(self, *args: Any, **kwargs: Any) -> Any:
        return _resolve(self.load_ref)(*args, **kwargs)


def _resolve(ref: str) -> Any:
    import importlib

    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


KINDS = {
    "qa": SpanKind("nlp.qa", "qa", "question + context -> answer span",
                   "polymodal_nlp.qa_corpus:corpus", "polymodal_nlp.qa:train_qa",
                   "polymodal_nlp.qa:load_reader", None, [], quick_records=24),
}


def spec_for(kind: SpanKind, overrides: list[str], quick: bool) -> Any:
    from polymodal.spec import parse_model_spec
    from polymodal.spec import apply_overrides
    from polymodal_nlp.token_model import TokenSpec

    base = {"name": kind.spec_name, "scenario": kind.scenario}
    quick_set = ["train.epochs=2", "text.options.max_length=64"] if quick else []
    data = apply_overrides(TokenSpec(**base).model_dump(mode="json"),
                           [*kind.defaults, *quick_set, *overrides])
    return parse_model_spec(TokenSpec, data)


def train_kind(name: str, out_dir: Path, *, data: str | None = None, test: str | None = None,
               overrides: list[str] | None = None, quick: bool = False,
               device: str | None = None, log: Any = None) -> dict[str, Any]:
    from polymodal.data.readers import read_records

    kind = KINDS[name]
    spec = spec_for(kind, overrides or [], quick)
    if data:
        train = read_records(data)
        held_out = read_records(test) if test else None
    else:
        train, held_out = kind.embedded()
    if quick:
        train = train[: kind.quick_records]
        held_out = held_out[: kind.quick_records // 2] if held_out else None
    return kind.train(spec, train, held_out, out_dir, device=device, log=log)


def demo_for(name: str) -> Callable[..., dict[str, Any]]:
    def run_demo(out_dir: Path, quick: bool = False, device: str | None = None
                 ) -> DemoSummary:
        kind = KINDS[name]
        started = time.perf_counter()
        metrics = train_kind(name, Path(out_dir), quick=quick, device=device)
        examples = [{k: v for k, v in r.items() if k in ("text", "question", "context")}
                    for r in (kind.examples or kind.embedded()[1][:2])]
        predictions = kind.load(out_dir, device=device).predict(examples)
        return DemoSummary.of(out_dir, time.perf_counter() - started,
                              {k: v for k, v in metrics.get("test", {}).items()
                               if not isinstance(v, dict | list)},
                              list(zip(examples, predictions, strict=True)))

    return run_demo


def scenario_for(name: str) -> Scenario:
    kind = KINDS[name]
    return Scenario(name=kind.scenario, description=kind.description, default_spec={},
                    primary_input=kind.primary_input, run_demo=demo_for(name),
                    load_model=kind.load)


def qa_scenario() -> Scenario:
    return scenario_for("qa")


def span_group(name: str) -> Any:
    from polymodal.cli.model_group import model_group

    kind = KINDS[name]

    def train(out_dir: Path, **options: Any) -> dict[str, Any]:
        return train_kind(name, out_dir, **options)

    data_help = {"qa": "SQuAD v1.1/v2.0 JSON or JSONL of {context, question, answers}."}[name]
    return model_group(kind.scenario, kind.description, train=train,
                       held_out=lambda: kind.embedded()[1], primary_input=kind.primary_input,
                       data_help=data_help)
