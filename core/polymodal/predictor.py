"""``polymodal.load(MODEL_DIR)``: a trained model ready to predict and evaluate.

Preprocessing (the processors) runs in the collate step, the forward pass alone on the
device, decoding after: the shape of an HF pipeline, so the forward pass can be batched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from polymodal.errors import DataError, FieldError
from polymodal.records import Record


class ModelPredictor(Protocol):
    """What ``polymodal.load`` returns, whatever the scenario: ``polymodal predict`` and
    ``polymodal serve`` need no more than this."""

    @property
    def scenario(self) -> str | None: ...

    def describe_inputs(self) -> list[dict[str, str]]: ...

    def describe_outputs(self) -> dict[str, Any]: ...

    def predict(self, records: list[Record], batch_size: int = 64) -> list[dict[str, Any]]: ...


class Predictor:
    def __init__(self, model: Any, manifest: dict[str, Any], device: Any,
                 precision: str = "fp32") -> None:
        from polymodal.device import autocast_dtype
        from polymodal.spec import parse_spec

        self.model = model
        self.manifest = manifest
        self.spec = parse_spec(manifest["spec"], check_names=False)
        self.device = device
        self.precision = precision
        self.dtype = autocast_dtype(device, precision)

    @property
    def input_names(self) -> list[str]:
        return [f for inp in self.spec.inputs for f in inp.fields]

    @property
    def scenario(self) -> str | None:
        return self.spec.scenario

    def describe_inputs(self) -> list[dict[str, str]]:
        """Each input field with its modality and encoder (server listings and schemas)."""
        return [{"name": f, "modality": i.modality, "encoder": i.encoder}
                for i in self.spec.inputs for f in i.fields]

    def describe_outputs(self) -> dict[str, Any]:
        outputs: dict[str, Any] = {"task": self.spec.task.name,
                                   "target": self.spec.task.target}
        labels = getattr(self.model.task, "labels", None)
        if labels is not None:
            outputs["labels"] = labels
        return outputs

    def validate(self, records: list[Record]) -> None:
        """Refuse records the model cannot take (DataError naming the record and field);
        the server calls it for each request before batching it with others."""
        from polymodal.encoders.numeric import check_numbers

        wanted = set(self.input_names)
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise DataError(f"record {i}: expected an object with fields "
                                f"{', '.join(sorted(wanted))}")
            if not wanted & set(record):
                raise DataError(f"record {i}: none of the model's inputs "
                                f"({', '.join(sorted(wanted))}) is present")
        check_numbers(records, [f for i in self.spec.inputs if i.modality == "numeric"
                                for f in i.fields], "record")
        token_field = getattr(self.model.fusion, "token_field", None)
        if self.model.task.needs_alignment and token_field is not None:
            for i, record in enumerate(records):  # a token task has nothing to read
                value = record.get(token_field)
                if not isinstance(value, str) or not value.strip():
                    raise FieldError(f"record {i}: \"{token_field}\" is empty or missing",
                                     i, token_field)

    def check_request(self, records: list[Record]) -> None:
        """What the server checks of one request before batching it: ``validate``, then
        each processor's own per-request limits (``check_request(values)``, e.g. the
        pixels of all images together)."""
        self.validate(records)
        for inp in self.spec.inputs:
            check = getattr(self.model.processors.get(inp.name), "check_request", None)
            if check is not None:
                for name in inp.fields:
                    check([r.get(name) for r in records])

    def predict(self, records: list[Record], batch_size: int = 64) -> list[dict[str, Any]]:
        """One prediction per record, in order (``label`` and ``scores`` for classification).

        Records are cut into batches of similar length (``length_chunks``: little padding),
        and results put back in input order.
        """
        from polymodal.data.collate import chunked_batches
        from polymodal.data.loader import length_chunks, record_lengths
        from polymodal.evaluation import predict_batches

        if not records:
            return []
        self.validate(records)
        chunks = length_chunks(record_lengths(records, self.model), batch_size)
        loader = chunked_batches(self.model, records, chunks)
        results: list[dict[str, Any]] = [{}] * len(records)
        order = [i for chunk in chunks for i in chunk]
        for position, result in zip(order, predict_batches(self.model, loader, self.device,
                                                                   self.dtype),
                                    strict=True):
            results[position] = result
        return results

    def evaluate(self, records: list[Record], batch_size: int = 64) -> dict[str, Any]:
        """Task metrics over records that carry the target."""
        from polymodal.data.collate import ordered_loader
        from polymodal.evaluation import evaluate_batches

        target = self.spec.task.target
        labelled = [r for r in records if r.get(target) is not None]
        if not labelled:
            raise DataError(f"no record has the target field {target!r}")
        self.validate(labelled)
        return evaluate_batches(
            self.model, ordered_loader(self.model, labelled, batch_size, with_target=True),
            self.device, self.dtype)


def load(model_dir: str | Path, device: str | None = None,
         precision: str = "fp32") -> ModelPredictor:
    """Load a model directory written by ``polymodal train`` (no unpickling).

    ``precision`` is the autocast used to predict: ``fp32`` (default: exact), or ``auto`` /
    ``bf16`` / ``fp16`` (faster where the hardware has them; see docs/serving.md).
    """
    from polymodal.artifacts import load_model_dir, read_manifest
    from polymodal.device import pick_device

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
    return Predictor(model, manifest, torch_device, precision)
