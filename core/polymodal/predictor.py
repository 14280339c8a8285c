"""``polymodal.load(MODEL_DIR)``: a trained model ready to predict and evaluate.

Every scenario's predictor is a ``BasePredictor``, in the spirit of an HF pipeline: the
scenario says how to ``preprocess`` records into a CPU batch, run the ``forward`` pass and
``postprocess`` its outputs into one result per record; the base owns batching, device
placement, ``inference_mode``, autocast (``precision``) and evaluation. ``WindowedPredictor``
is the chunked variant: one record -> many windows -> one answer (long texts for token
tasks and extractive QA today; long audio and image tiles use the same shape).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from polymodal.errors import ArtifactError, DataError
from polymodal.records import Record


@dataclass
class ExportGraph:
    """What a predictor gives ``polymodal export``: a module over flat positional tensors
    (what ``preprocess`` makes; the Python steps around it stay outside), a batch to trace
    it with and a batch of other sizes to verify the exported graph on, and what a runtime
    needs beside the graph (labels, vocabulary, the processors' directory)."""

    module: nn.Module
    inputs: list[str]
    outputs: list[str]
    trace: list[torch.Tensor]
    check: list[torch.Tensor]
    sidecar: dict[str, Any] = field(default_factory=dict)
    # Axes an input keeps at its traced size (an image's channels and pixels: some
    # operators, such as adaptive pooling, export only for a known size); the others are
    # dynamic.
    fixed_axes: dict[str, list[int]] = field(default_factory=dict)
    # Inputs and outputs whose first axis is not the batch every other one shares, by the
    # name of their own (a cascade's crops: as many as the stage before kept).
    batch_axes: dict[str, str] = field(default_factory=dict)


class NamedInputs(nn.Module):
    """``module(dict(zip(names, tensors)))`` over positional tensors (exporters want
    positional arguments; most models take a dict of tensors)."""

    def __init__(self, module: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.module, self.names = module, list(names)

    def forward(self, *tensors: torch.Tensor) -> Any:
        return self.module(dict(zip(self.names, tensors, strict=True)))


class ModelPredictor(Protocol):
    """What ``polymodal.load`` returns, whatever the scenario: ``polymodal predict``,
    ``evaluate`` and ``serve`` need no more than this."""

    @property
    def scenario(self) -> str | None: ...

    def describe_inputs(self) -> list[dict[str, str]]: ...

    def describe_outputs(self) -> dict[str, Any]: ...

    def predict(self, records: list[Record], batch_size: int = 64) -> list[dict[str, Any]]: ...

    def evaluate(self, records: list[Record], batch_size: int = 64) -> dict[str, Any]: ...


class BasePredictor:
    """A loaded model: ``preprocess`` / ``forward`` / ``postprocess`` per scenario, the rest
    here.

    ``module`` is the torch model (put in eval mode; ``None`` for a predictor without one),
    ``device`` where it lives, ``precision`` the autocast of the forward pass (``fp32``,
    ``auto``, ``bf16``, ``fp16``; see docs/serving.md)."""

    scenario: str | None = None
    # Whether predictions are files (a generator's images): ``polymodal predict --out DIR``
    # then calls ``write_files_to(DIR, shown_as=..., grid=...)`` before ``predict`` and
    # ``finish_files()`` after it (``--grid``: one grid image of them all).
    writes_files: bool = False
    # Whether a prediction can be drawn over its input (boxes on an image, a mask as an
    # overlay): ``polymodal predict --draw DIR`` then saves ``draw(record, prediction)``, an
    # image, for each record.
    draws: bool = False
    # A progress bar over the batches on stderr (set by a CLI for a person watching).
    progress: bool = False

    def __init__(self, module: nn.Module | None, device: torch.device,
                 precision: str = "fp32", manifest: dict[str, Any] | None = None) -> None:
        from polymodal.device import autocast_dtype

        self.module = module.eval() if module is not None else None
        self.device = device
        self.precision = precision
        self.dtype = autocast_dtype(device, precision)
        self.manifest = manifest or {}

    # --- what a scenario gives -------------------------------------------------------------
    def describe_inputs(self) -> list[dict[str, str]]:
        """Each input field: ``{"name", "modality", "encoder"}`` (listings, schemas)."""
        raise NotImplementedError

    def describe_outputs(self) -> dict[str, Any]:
        """``{"task", "target", ...}``: what ``predict`` returns."""
        raise NotImplementedError

    def validate(self, records: list[Record]) -> None:
        """Refuse records the model cannot take (``DataError`` naming the record)."""
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise DataError(f"record {index}: expected an object")

    def check_request(self, records: list[Record]) -> None:
        """What the server checks of one request before batching it with others."""
        self.validate(records)

    def batches(self, records: list[Record], batch_size: int) -> list[list[int]]:
        """Indices of ``records`` cut into batches (in order; scenarios group by length or
        kind)."""
        return [list(range(start, min(start + batch_size, len(records))))
                for start in range(0, len(records), batch_size)]

    def preprocess(self, records: list[Record]) -> Any:
        """One batch of records -> CPU tensors (any structure ``move_batch`` can move)."""
        raise NotImplementedError

    def forward(self, batch: Any) -> Any:
        """The model on a batch already on ``self.device``, under autocast."""
        raise NotImplementedError

    def postprocess(self, outputs: Any, batch: Any, records: list[Record]) -> list[Record]:
        """One result per record of the batch."""
        raise NotImplementedError

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        """The records ``evaluate`` scores (those with a target); ``DataError`` if none."""
        return records

    def score(self, records: list[Record], predictions: list[Record]) -> dict[str, Any]:
        """Metrics of ``predictions`` against the records' targets."""
        raise NotImplementedError

    def draw(self, record: Record, prediction: Record) -> Any:
        """``prediction`` drawn over ``record``'s input, as a ``PIL.Image`` (``draws``)."""
        raise NotImplementedError

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """The graph ``polymodal export`` traces (``records``: examples to build the
        trace and check batches from, where the scenario needs them)."""
        raise ArtifactError(f"{self.scenario or 'this'} models have no exportable graph")

    # --- what the base owns ------------------------------------------------------------------
    def predict(self, records: list[Record], batch_size: int = 64) -> list[Record]:
        """One result per record, in input order."""
        if not records:
            return []
        self.validate(records)
        return self.run(records, batch_size)

    def evaluate(self, records: list[Record], batch_size: int = 64) -> dict[str, Any]:
        """Task metrics over records that carry the target."""
        labelled = self.evaluation_records(records)
        self.validate(labelled)
        return self.score(labelled, self.run(labelled, batch_size))

    def run(self, records: list[Record], batch_size: int) -> list[Record]:
        """Batches through preprocess -> device -> forward (inference mode, autocast) ->
        postprocess; results put back in input order."""
        from polymodal.data.collate import move_batch
        from polymodal.device import autocast
        from polymodal.training.progress import EpochProgress

        if self.module is not None and self.module.training:
            self.module.eval()  # eval() walks every submodule: not once per request
        results: list[Record | None] = [None] * len(records)
        batches = list(self.batches(records, max(1, batch_size)))
        with torch.inference_mode(), EpochProgress(
                self.progress and len(batches) > 1, "predict", len(batches),
                loss=False) as advance:
            for indices in batches:
                chunk = [records[i] for i in indices]
                batch = move_batch(self.preprocess(chunk), self.device)
                with autocast(self.device, self.dtype):
                    outputs = self.forward(batch)
                for i, result in zip(indices, self.postprocess(outputs, batch, chunk),
                                     strict=True):
                    results[i] = result
                advance()
        return results  # type: ignore[return-value]


class WindowedPredictor(BasePredictor):
    """One record -> many windows -> one answer. ``windows`` cuts a record into units that
    ``preprocess`` takes (overlapping token windows of a long text, say); the base batches
    all windows of all records together; ``combine`` joins one record's window results."""

    def windows(self, record: Record) -> list[Any]:
        raise NotImplementedError

    def combine(self, record: Record, results: list[Record], windows: list[Any]) -> Record:
        raise NotImplementedError

    def run(self, records: list[Record], batch_size: int) -> list[Record]:
        units: list[Any] = []
        owners: list[int] = []
        for index, record in enumerate(records):
            for window in self.windows(record):
                units.append(window)
                owners.append(index)
        window_results = super().run(units, batch_size)
        grouped: list[list[int]] = [[] for _ in records]
        for position, owner in enumerate(owners):
            grouped[owner].append(position)
        return [self.combine(record, [window_results[p] for p in positions],
                             [units[p] for p in positions])
                for record, positions in zip(records, grouped, strict=True)]


def load(model_dir: str | Path, device: str | None = None,
         precision: str = "fp32") -> ModelPredictor:
    """Load a model directory written by ``polymodal train`` (no unpickling).

    ``precision`` is the autocast used to predict: ``fp32`` (default: exact), or ``auto`` /
    ``bf16`` / ``fp16`` (faster where the hardware has them; see docs/serving.md).
    """
    from polymodal.artifacts import load_model_dir, read_manifest
    from polymodal.device import pick_device
    from polymodal.spec_predictor import SpecPredictor

    scenario_name = read_manifest(model_dir)["spec"].get("scenario")
    if scenario_name:
        from polymodal.registry import get_registry

        if scenario_name in get_registry().names("scenario"):
            from polymodal.scenario import load_scenario

            scenario = load_scenario(scenario_name)
            if scenario.load_model is not None:
                return scenario.load_model(model_dir, device=device, precision=precision)
    torch_device = pick_device(device)
    model, manifest = load_model_dir(model_dir, device=torch_device)
    return SpecPredictor(model, manifest, torch_device, precision, Path(model_dir))
