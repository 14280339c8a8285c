"""The predictor of a spec-built model (``polymodal train spec.yaml``): the processors in
``preprocess``, the model in ``forward``, the task's ``decode`` in ``postprocess``. A
token-level task (NER) reads a text longer than the encoder's window in overlapping
windows and joins them with ``Task.combine_windows``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from polymodal.data.collate import model_collator
from polymodal.errors import ArtifactError, DataError, FieldError
from polymodal.model import MultimodalModel
from polymodal.predictor import ExportGraph, WindowedPredictor
from polymodal.records import Record

# A window of one record: (the record as the model reads it, where its text starts and ends
# in the record's token field).
Window = tuple[Record, int, int]


class SpecPredictor(WindowedPredictor):
    def __init__(self, model: MultimodalModel, manifest: dict[str, Any],
                 device: torch.device, precision: str = "fp32",
                 directory: Path | None = None) -> None:
        from polymodal.spec import parse_spec

        super().__init__(model, device, precision, manifest)
        self.model = model
        self.directory = directory
        self.spec = parse_spec(manifest["spec"], check_names=False)
        self.token_field = (model.fusion.token_field if model.task.needs_alignment
                            else None)
        self.collate = model_collator(model, with_target=False)

    @property
    def input_names(self) -> list[str]:
        return [f for inp in self.spec.inputs for f in inp.fields]

    @property
    def scenario(self) -> str | None:  # type: ignore[override]
        return self.spec.scenario

    def describe_inputs(self) -> list[dict[str, str]]:
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
        """Refuse records the model cannot take (DataError naming the record and field)."""
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
        if self.token_field is not None:
            for i, record in enumerate(records):  # a token task has nothing to read
                value = record.get(self.token_field)
                if not isinstance(value, str) or not value.strip():
                    raise FieldError(f"record {i}: \"{self.token_field}\" is empty or missing",
                                     i, self.token_field)

    def check_request(self, records: list[Record]) -> None:
        """``validate``, then each processor's own per-request limits
        (``check_request(values)``, e.g. the pixels of all images together)."""
        self.validate(records)
        for inp in self.spec.inputs:
            check = getattr(self.model.processors.get(inp.name), "check_request", None)
            if check is not None:
                for name in inp.fields:
                    check([r.get(name) for r in records])

    # --- windows: only a token task's long texts have more than one -------------------------
    def windows(self, record: Record) -> list[Window]:
        if self.token_field is None:
            return [(record, 0, 0)]
        text = record[self.token_field]
        processor = self.model.processors[self._token_input()]
        return [({**record, self.token_field: text[start:end]}, start, end)
                for start, end in processor.windows(text)]

    def _token_input(self) -> str:
        return next(inp.name for inp in self.spec.inputs if self.token_field in inp.fields)

    def combine(self, record: Record, results: list[Record], windows: list[Window]
                ) -> Record:
        if len(results) == 1:
            return results[0]
        assert self.token_field is not None  # windows are made only for the token field
        text = record[self.token_field]
        parts = []
        for k, (result, (_, start, end)) in enumerate(zip(results, windows, strict=True)):
            core_start = 0 if k == 0 else (start + windows[k - 1][2]) // 2
            core_end = len(text) if k == len(windows) - 1 else (windows[k + 1][1] + end) // 2
            parts.append((result, start, core_start, core_end))
        return self.model.task.combine_windows(text, parts)

    # --- the pipeline steps ----------------------------------------------------------------
    def batches(self, records: list[Window], batch_size: int) -> list[list[int]]:  # type: ignore[override]
        """Batches of similar length (little padding)."""
        from polymodal.data.loader import length_chunks, record_lengths

        return length_chunks(record_lengths([w[0] for w in records], self.model), batch_size)

    def preprocess(self, records: list[Window]) -> Any:  # type: ignore[override]
        return self.collate([w[0] for w in records])

    def forward(self, batch: Any) -> Any:
        return self.model(batch["inputs"], batch["present"])

    def postprocess(self, outputs: Any, batch: Any, records: list[Any]) -> list[Record]:
        return self.model.task.decode(outputs, batch)

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        from polymodal.export import spec_graph

        if self.directory is None:
            raise ArtifactError("export needs the model loaded from its directory")
        return spec_graph(self.model, self.manifest, self.directory, records)

    def evaluate(self, records: list[Record], batch_size: int = 64) -> dict[str, Any]:
        """Loss and task metrics over records that carry the target: the Trainer's own
        validation step (so a run's test metrics and ``polymodal evaluate`` agree)."""
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
