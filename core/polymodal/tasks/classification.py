"""``classification``: binary or multiclass, softmax over the labels seen in training.

Metrics (torchmetrics): accuracy, macro-F1, AUROC and the confusion matrix; with two labels
also, for the positive one (``positive``), the 95% bootstrap interval of AUROC
(``auroc_ci_low``, ``auroc_ci_high``), AUPRC, sensitivity and specificity at ``threshold``,
the expected calibration error (10 bins) and the reliability diagram's bins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from polymodal.component_options import ClassificationOptions, HeadOptions
from polymodal.errors import DataError
from polymodal.fusions import FusedDims
from polymodal.options import parse_options
from polymodal.spec import TaskSpec
from polymodal.tasks.base import Batch, Task

if TYPE_CHECKING:
    from torchmetrics import Metric, MetricCollection


class ClassificationTask(Task):
    monitor = "accuracy"
    Options: type[HeadOptions] = ClassificationOptions

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        options = parse_options(self.Options, spec.options, "task.options",
                                f"task {spec.name!r}")
        self.label_smoothing = options.label_smoothing
        self.hidden = options.hidden
        self.dropout = options.dropout
        self.labels: list[str] = []
        self.positive: str | None = getattr(options, "positive", None)
        self.threshold = float(getattr(options, "threshold", 0.5))

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
        if self.positive is not None and self.positive not in self.labels:
            raise DataError(f"task.options.positive: {self.positive!r} is not a label of "
                            f"{self.spec.target!r} ({', '.join(self.labels[:5])})")

    @property
    def positive_index(self) -> int:
        """The positive label's column (two-label tasks)."""
        return self.labels.index(self.positive) if self.positive in self.labels else 1

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
        from torchmetrics import MetricCollection
        from torchmetrics.classification import (
            BinaryAUROC,
            BinaryAveragePrecision,
            BinaryCalibrationError,
            BinaryRecall,
            BinarySpecificity,
            MulticlassAccuracy,
            MulticlassAUROC,
            MulticlassConfusionMatrix,
            MulticlassF1Score,
        )

        from polymodal.tasks.intervals import AurocInterval
        from polymodal.tasks.task_metrics import Reliability, on_positive

        n = self.output_dim
        metrics: dict[str, Metric | MetricCollection] = {
            "accuracy": MulticlassAccuracy(num_classes=n, average="micro"),
            "macro_f1": MulticlassF1Score(num_classes=n, average="macro"),
            "auroc": MulticlassAUROC(num_classes=n),
            "confusion_matrix": MulticlassConfusionMatrix(num_classes=n),
        }
        if n == 2:  # the positive label's ranking, operating point and calibration
            p = self.positive_index
            metrics.update({
                "auroc": on_positive(BinaryAUROC, p),
                "auroc_ci": AurocInterval(p),
                "auprc": on_positive(BinaryAveragePrecision, p),
                "sensitivity": on_positive(BinaryRecall, p, threshold=self.threshold),
                "specificity": on_positive(BinarySpecificity, p, threshold=self.threshold),
                "ece": on_positive(BinaryCalibrationError, p, n_bins=10),
                "calibration": Reliability(p),
            })
        return MetricCollection(metrics)

    def metric_inputs(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(outputs.float(), dim=-1)

    def finalize_metrics(self, computed: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in computed.items():
            if key == "confusion_matrix":
                out[key] = {"labels": self.labels, "matrix": value.int().tolist()}
            elif key == "calibration":
                confidence, observed, count = value.tolist()
                out[key] = {"positive": self.labels[self.positive_index], "bins": [
                    {"bin": [i / len(count), (i + 1) / len(count)], "n": int(c),
                     "mean_probability": s / c, "observed_rate": o / c}
                    for i, (s, o, c) in enumerate(zip(confidence, observed, count,
                                                      strict=True)) if c]}
            elif key == "auroc_ci":
                out["auroc_ci_low"], out["auroc_ci_high"] = (float(v) for v in value)
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
