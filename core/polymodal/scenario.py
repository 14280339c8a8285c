"""Scenarios: named applications (``domain.verb``) with a default spec and embedded data.

A plugin registers a factory returning a ``Scenario``; the core turns every scenario into
``polymodal <domain> <verb> train|evaluate|predict`` and into a ``polymodal demo`` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from polymodal.errors import PolymodalError
from polymodal.records import Record

# A reference method a scenario's model is compared with: (train, held-out) -> metrics of
# the same kind as the model's, e.g. "tag every name seen in training".
Baseline = Callable[[list[Record], list[Record]], dict[str, Any]]


@dataclass
class DemoData:
    """The embedded default data of a scenario: train and held-out test records, and a few
    unlabelled examples to show predictions on."""

    train: list[Record]
    test: list[Record]
    examples: list[Record] = field(default_factory=list)
    source: str = ""


@dataclass
class DemoSummary:
    """What ``polymodal demo`` reports of one scenario, whatever kind of model it trains:
    the human-readable table and ``--json`` print the same facts from it."""

    out: str
    seconds: float
    # Held-out metrics, scalars only (name -> value), the headline of the run.
    metrics: dict[str, Any]
    # (input record, prediction) pairs on the scenario's example inputs.
    examples: list[tuple[Any, Any]] = field(default_factory=list)
    # Anything more a scenario reports beside its metrics (a baseline's metrics ...).
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, out: Any, seconds: float, metrics: dict[str, Any],
           examples: list[tuple[Any, Any]] | None = None, **extra: Any) -> DemoSummary:
        """A summary keeping only the scalar metrics (nested ones are flattened
        ``a.b``; lists such as example rows are dropped)."""
        return cls(out=str(out), seconds=round(seconds, 1), metrics=scalar_metrics(metrics),
                   examples=list(examples or []), extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "seconds": self.seconds, "metrics": self.metrics,
                "examples": [list(pair) for pair in self.examples], **self.extra}


def scalar_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(scalar_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, int | float | str | bool) or value is None:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass
class Scenario:
    name: str
    description: str
    default_spec: dict[str, Any]
    load_demo: Callable[[], DemoData] | None = None
    # ``key.path=value`` overrides that make ``demo --quick`` a few-seconds smoke run.
    quick_overrides: list[str] = field(default_factory=list)
    quick_records: int = 200
    # Field filled from positional arguments of ``predict`` (``... predict MODEL "text"``).
    primary_input: str | None = None
    notes: list[str] = field(default_factory=list)
    # Baselines by name, scored on the same held-out records as the model: the numbers
    # land in metrics.json (``baselines``), the report and the demo summary.
    baselines: dict[str, Baseline] = field(default_factory=dict)
    # Scenarios whose models are not spec-trained networks (e.g. recommenders) bring their
    # own demo (out_dir, quick, device) -> DemoSummary, and loader (model_dir, device,
    # precision) -> an object with ``predict(records)``; polymodal.load, predict, serve and
    # demo use them through the scenario named in the model's manifest.
    run_demo: Callable[..., DemoSummary] | None = None
    load_model: Callable[..., Any] | None = None


def load_scenario(name: str) -> Scenario:
    from polymodal.registry import get_registry

    return get_registry().build("scenario", name)


def scenario_spec(scenario: Scenario, overrides: list[str] | None = None,
                  quick: bool = False) -> Any:
    """The scenario's default spec with quick-mode and user overrides applied, validated."""
    from polymodal.spec import apply_overrides, parse_spec

    data = dict(scenario.default_spec, scenario=scenario.name)
    data = apply_overrides(data, (scenario.quick_overrides if quick else []) + (overrides or []))
    return parse_spec(data)


def run_scenario(scenario: Scenario, out_dir: Any, *, quick: bool = False,
                 train_path: str | None = None, test_path: str | None = None,
                 overrides: list[str] | None = None, device: str | None = None,
                 progress: bool = True, resume: bool = False) -> tuple[Any, DemoData | None]:
    """Train a scenario on its embedded data (or on given files) and write a model dir."""
    from polymodal.pipeline import run_training

    spec = scenario_spec(scenario, overrides, quick)
    demo = None
    train_records = test_records = None
    if train_path:
        spec.data.train = train_path
        spec.data.test = test_path
    else:
        if scenario.load_demo is None:
            raise PolymodalError(f"{scenario.name} has no embedded records to train on")
        demo = scenario.load_demo()
        train_records, test_records = demo.train, demo.test
        if quick:
            train_records = train_records[: scenario.quick_records]
            test_records = test_records[: scenario.quick_records]
    result = run_training(spec, out_dir, train_records=train_records,
                          test_records=test_records, device=device, progress=progress,
                          resume=resume, baselines=scenario.baselines)
    return result, demo
