"""``multilabel``: any number of labels per record, one sigmoid per label.

A target is a list of labels, or a string of labels split on ``options.separator``
(default ``|``); an empty list or string means no label. Metrics (torchmetrics): micro and
macro F1, per-label F1, subset accuracy (every label right) and Hamming loss. Decoding
returns the labels whose probability reaches ``options.threshold`` (default 0.5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from polymodal.component_options import MultilabelOptions
from polymodal.errors import DataError
from polymodal.spec import TaskSpec
from polymodal.tasks.base import Batch
from polymodal.tasks.classification import ClassificationTask

if TYPE_CHECKING:
    from torchmetrics import MetricCollection


class MultilabelTask(ClassificationTask):
    """Shares the label map, its JSON state and the head with ``classification``; targets,
    loss, metrics and decoding are per label."""

    monitor = "f1_micro"
    minimized = ("loss", "hamming_loss")
    Options = MultilabelOptions

    def __init__(self, spec: TaskSpec) -> None:
        super().__init__(spec)
        options = MultilabelOptions.model_validate(spec.options)  # checked by super()
        self.separator = options.separator
        self.threshold = options.threshold

    def split(self, target: Any) -> list[str]:
        if isinstance(target, list | tuple):
            return [str(t).strip() for t in target if str(t).strip()]
        return [t.strip() for t in str(target).split(self.separator) if t.strip()]

    def fit(self, targets: list[Any]) -> None:
        self.labels = sorted({label for t in targets if t is not None
                              for label in self.split(t)})
        if len(self.labels) < 2:
            raise DataError(f"target {self.spec.target!r} needs at least 2 distinct labels; "
                            f"found {self.labels}")

    def collate_targets(self, targets: list[Any], batch: Batch) -> torch.Tensor:
        index = {label: i for i, label in enumerate(self.labels)}
        encoded = torch.zeros(len(targets), len(self.labels))
        for row, target in enumerate(targets):
            for label in self.split(target):
                if label not in index:
                    raise DataError(f"target {self.spec.target!r} has a label not seen in "
                                    f"training: {label}")
                encoded[row, index[label]] = 1.0
        return encoded

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(outputs.float(), batch["target"].float())

    def metrics(self) -> MetricCollection:
        from torchmetrics.classification import (
            MultilabelExactMatch,
            MultilabelF1Score,
            MultilabelHammingDistance,
        )

        from polymodal.tasks.task_metrics import IntTargets

        n, t = self.output_dim, self.threshold
        return IntTargets({
            "f1_micro": MultilabelF1Score(num_labels=n, average="micro", threshold=t),
            "f1_macro": MultilabelF1Score(num_labels=n, average="macro", threshold=t),
            "per_label_f1": MultilabelF1Score(num_labels=n, average="none", threshold=t),
            "subset_accuracy": MultilabelExactMatch(num_labels=n, threshold=t),
            "hamming_loss": MultilabelHammingDistance(num_labels=n, threshold=t),
        })

    def metric_inputs(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(outputs.float())

    def finalize_metrics(self, computed: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in computed.items():
            if key == "per_label_f1":
                out[key] = {label: float(v) for label, v in zip(self.labels, value.tolist(),
                                                                strict=True)}
            else:
                out[key] = float(value)
        return out

    def decode(self, outputs: torch.Tensor, batch: Batch) -> list[dict[str, Any]]:
        probs = torch.sigmoid(outputs.float()).cpu().tolist()
        return [{"labels": [label for label, p in zip(self.labels, row, strict=True)
                            if p >= self.threshold],
                 "scores": {label: round(float(p), 6) for label, p in zip(self.labels, row,
                                                                          strict=True)}}
                for row in probs]
