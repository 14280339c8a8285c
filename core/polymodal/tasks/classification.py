"""``classification``: binary or multiclass, softmax over the labels seen in training.

Metrics: accuracy, macro-F1 and AUROC (torchmetrics), plus the confusion matrix for plots.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAUROC,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from polymodal.component_options import ClassificationOptions
from polymodal.errors import DataError
from polymodal.fusions import FusedDims
from polymodal.options import parse_options
from polymodal.spec import TaskSpec
from polymodal.tasks.base import Batch, Task


class _PositiveClass(BinaryAUROC):
    """Binary AUROC fed with the two-column probability matrix."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(preds[:, 1], target)


class ClassificationTask(Task):
    monitor = "accuracy"
    Options = ClassificationOptions

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        options = parse_options(self.Options, spec.options, "task.options",
                                f"task {spec.name!r}")
        self.label_smoothing = options.label_smoothing
        self.hidden = options.hidden
        self.dropout = options.dropout
        self.labels: list[str] = []

    @property
    def output_dim(self) -> int:  # type: ignore[override]
        return len(self.labels)

    def fit(self, targets: list[Any]) -> None:
        self.labels = sorted({str(t) for t in targets if t is not None})
        if len(self.labels) < 2:
            raise DataError(
                f"target {self.spec.target!r} needs at least 2 distinct labels; "
                f"found {self.labels}"
            )

    def state(self) -> dict[str, Any]:
        return {"labels": self.labels}

    def load_state(self, state: dict[str, Any]) -> None:
        self.labels = list(state["labels"])

    def collate_targets(self, targets: list[Any], batch: Batch) -> torch.Tensor:
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = sorted({str(t) for t in targets if str(t) not in index})
        if unknown:
            raise DataError(
                f"target {self.spec.target!r} has labels not seen in training: "
                f"{', '.join(unknown[:5])}"
            )
        return torch.tensor([index[str(t)] for t in targets], dtype=torch.long)

    def build_head(self, dims: FusedDims) -> nn.Module:
        in_dim = int(dims.pooled)  # type: ignore[arg-type]
        if self.hidden:
            return nn.Sequential(nn.Linear(in_dim, int(self.hidden)), nn.GELU(),
                                 nn.Dropout(self.dropout),
                                 nn.Linear(int(self.hidden), self.output_dim))
        return nn.Sequential(nn.Dropout(self.dropout), nn.Linear(in_dim, self.output_dim))

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs.float(), batch["target"],
                               label_smoothing=self.label_smoothing)

    def metrics(self) -> MetricCollection:
        n = self.output_dim
        auroc = _PositiveClass() if n == 2 else MulticlassAUROC(num_classes=n)
        return MetricCollection({
            "accuracy": MulticlassAccuracy(num_classes=n, average="micro"),
            "macro_f1": MulticlassF1Score(num_classes=n, average="macro"),
            "auroc": auroc,
            "confusion_matrix": MulticlassConfusionMatrix(num_classes=n),
        })

    def metric_inputs(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(outputs.float(), dim=-1)

    def finalize_metrics(self, computed: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in computed.items():
            if key == "confusion_matrix":
                out[key] = {"labels": self.labels, "matrix": value.int().tolist()}
            else:
                out[key] = float(value)
        return out

    def decode(self, outputs: torch.Tensor, batch: Batch) -> list[dict[str, Any]]:
        probs = torch.softmax(outputs.float(), dim=-1).cpu()
        best = probs.argmax(dim=-1).tolist()
        return [
            {"label": self.labels[b],
             "scores": {label: round(float(p), 6) for label, p in zip(self.labels, row,
                                                                      strict=True)}}
            for b, row in zip(best, probs.tolist(), strict=True)
        ]
