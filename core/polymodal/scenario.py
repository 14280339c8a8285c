"""Scenarios: named applications (``domain.verb``) with a default spec and embedded data.

A plugin registers a factory returning a ``Scenario``; the core turns every scenario into
``polymodal <domain> <verb> train|evaluate|predict`` and into a ``polymodal demo`` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from polymodal.errors import PolymodalError
from polymodal.records import Record

if TYPE_CHECKING:
    from polymodal.distributed import DistContext

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
        """A summary keeping the headline: the top-level scalar metrics (per-type and
        per-label breakdowns stay in metrics.json and the report)."""
        headline = {k: v for k, v in metrics.items()
                    if isinstance(v, int | float | str | bool) or v is None}
        return cls(out=str(out), seconds=round(seconds, 1), metrics=headline,
                   examples=list(examples or []), extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "seconds": self.seconds, "metrics": self.metrics,
                "examples": [list(pair) for pair in self.examples], **self.extra}


@dataclass
class FitRequest:
    """What a scenario's own ``fit`` gets: its validated spec, the records (embedded or
    from ``--data``), where to write the model and how."""

    spec: Any  # an instance of the scenario's ``spec_model``
    train: list[Record]
    test: list[Record] | None
    out_dir: Path
    device: str | None = None
    progress: bool = True
    resume: bool = False
    # Under torchrun, this process's rank (for a scenario declared ``distributed``): the fit
    # trains on every rank and only rank 0 writes the model directory and returns metrics.
    dist: DistContext | None = None
    # Where the training records came from (the --data file, or the embedded data set's
    # name), for messages that point into it.
    source: str = ""
    # ``--quick``: the records are already a slice; a fit may shorten what it does besides.
    quick: bool = False


# Model directory, device ("cuda", "cpu" or None: the best there is), precision -> the
# object polymodal.load returns (``predict``, ``evaluate``, ``describe_inputs``/``outputs``).
Loader = Callable[..., Any]


@dataclass
class Scenario:
    """A named application (``domain.verb``) and its lifecycle.

    Most scenarios are an encoders -> fusion -> task network: a core ``default_spec`` and
    embedded data are all they declare, and the core trains (``polymodal.pipeline``), loads
    and serves them. A scenario with another kind of model (a dual encoder, a captioner, a
    recommender, an index) declares its ``spec_model`` (pydantic), its ``fit`` (a
    ``FitRequest`` -> metrics, writing the model directory, usually through the core
    Trainer) and its ``load_model``. Either way the core derives ``polymodal <domain>
    <verb> train|evaluate|predict``, ``polymodal demo``, ``polymodal.load``, ``predict`` and
    ``serve`` from it.
    """

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
    # Further held-out sets by name, scored in every run of a spec scenario beside the
    # test split (with the baselines): data of another kind than the embedded corpus, such
    # as hand-labelled real text beside a synthetic test split. Each is a function that
    # returns the records; the scores land in metrics.json (``extra_tests``) and the
    # report's comparisons.
    extra_tests: dict[str, Callable[[], list[Record]]] = field(default_factory=dict)
    # A scenario with its own kind of model (see above).
    spec_model: type[BaseModel] | None = None
    fit: Callable[[FitRequest], dict[str, Any]] | None = None
    load_model: Loader | None = None
    # Reads ``--data`` / ``--test`` files into records (default: by extension).
    read_data: Callable[[str], list[Record]] | None = None
    # Whether ``fit`` trains under torchrun (``--nproc-per-node``; see ``FitRequest.dist``).
    # Spec scenarios always do.
    distributed: bool = False
    # The embedded data when it depends on the spec (a backend that trains on other data
    # than the default spec reads): called with the validated spec instead of
    # ``load_demo`` by ``train``, ``demo`` and ``evaluate`` (with the model's spec).
    spec_demo: Callable[[Any], DemoData] | None = None
    # Overrides ``polymodal demo`` applies to the default spec, before ``quick_overrides``
    # (speech.asr's default spec loads a pretrained model; its demo trains one).
    demo_overrides: list[str] = field(default_factory=list)


def load_scenario(name: str) -> Scenario:
    from polymodal.registry import get_registry

    return get_registry().build("scenario", name)


def scenario_spec(scenario: Scenario, overrides: list[str] | None = None,
                  quick: bool = False, demo: bool = False) -> Any:
    """The scenario's default spec with demo, quick-mode and user overrides applied (in
    that order), validated (by the core spec schema, or by the scenario's own
    ``spec_model``)."""
    from polymodal.spec import apply_overrides, parse_model_spec, parse_spec

    data = dict(scenario.default_spec, scenario=scenario.name)
    data = apply_overrides(data, (scenario.demo_overrides if demo else [])
                           + (scenario.quick_overrides if quick else []) + (overrides or []))
    if scenario.spec_model is not None:
        return parse_model_spec(scenario.spec_model, data)
    return parse_spec(data)


def embedded_data(scenario: Scenario, spec: Any = None) -> DemoData:
    """The scenario's embedded records: ``spec_demo(spec)`` when it has one, else
    ``load_demo()``."""
    if scenario.spec_demo is not None and spec is not None:
        return scenario.spec_demo(spec)
    if scenario.load_demo is None:
        raise PolymodalError(f"{scenario.name} has no embedded records; give --data")
    return scenario.load_demo()


def model_spec(scenario: Scenario, model_dir: str | Path) -> Any:
    """The validated spec of a scenario's trained model (None unless the scenario's
    embedded data depend on the spec)."""
    if scenario.spec_demo is None or scenario.spec_model is None:
        return None
    from polymodal.artifacts import read_manifest
    from polymodal.spec import parse_model_spec

    return parse_model_spec(scenario.spec_model, read_manifest(model_dir)["spec"])


def scenario_records(scenario: Scenario, *, quick: bool, train_path: str | None = None,
                     test_path: str | None = None, spec: Any = None
                     ) -> tuple[list[Record], list[Record] | None, DemoData | None]:
    """(train, test, demo): from files, or the embedded data for ``spec`` (a slice of it
    when quick)."""
    from polymodal.data.readers import read_records

    read = scenario.read_data or read_records
    if train_path:
        return read(train_path), (read(test_path) if test_path else None), None
    demo = embedded_data(scenario, spec)
    train, test = demo.train, demo.test
    if quick:
        train, test = train[: scenario.quick_records], test[: scenario.quick_records // 2]
    if test_path:  # the embedded training records, scored on the user's test file
        test = read(test_path)
    return train, test, demo


def run_scenario(scenario: Scenario, out_dir: Any, *, quick: bool = False,
                 train_path: str | None = None, test_path: str | None = None,
                 overrides: list[str] | None = None, device: str | None = None,
                 progress: bool = True, resume: bool = False, demo: bool = False
                 ) -> tuple[Any, DemoData | None]:
    """Train a scenario on its embedded data (or on given files) and write a model dir;
    ``demo``: with the scenario's ``demo_overrides``."""
    import time

    from polymodal.pipeline import RunResult, run_training

    spec = scenario_spec(scenario, overrides, quick, demo=demo)
    if scenario.fit is not None:
        started = time.perf_counter()
        train, test, data = scenario_records(scenario, quick=quick, train_path=train_path,
                                             test_path=test_path, spec=spec)
        request = FitRequest(spec=spec, train=train, test=test, out_dir=Path(out_dir),
                             device=device, progress=progress, resume=resume,
                             source=train_path or (data.source if data else ""), quick=quick)
        if scenario.distributed:
            from polymodal import distributed

            request.dist = distributed.init_from_env()
            request.resume = resume or distributed.restart_count() > 0
        try:
            metrics = scenario.fit(request)
        finally:
            if request.dist is not None:
                distributed.shutdown()
        return RunResult(out_dir=Path(out_dir), metrics=metrics,
                         seconds=time.perf_counter() - started), data
    data = None
    train_records = test_records = None
    if train_path:
        spec.data.train = train_path
        spec.data.test = test_path
    else:
        train_records, test_records, data = scenario_records(scenario, quick=quick,
                                                             spec=spec, test_path=test_path)
        # The core quick slice keeps as many test records as training ones.
        if quick and data is not None and not test_path:
            test_records = data.test[: scenario.quick_records]
    result = run_training(spec, out_dir, train_records=train_records,
                          test_records=test_records, device=device, progress=progress,
                          resume=resume, baselines=scenario.baselines,
                          extra_tests=None if quick else scenario.extra_tests)
    return result, data
