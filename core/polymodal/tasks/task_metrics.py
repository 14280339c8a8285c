"""The torchmetrics metrics of the core tasks, in a module of their own: torchmetrics takes
seconds to import (it imports scipy, torchvision and transformers), so a task imports this
where it builds its metrics, and a process that only predicts or serves never does."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric, MetricCollection

Span = tuple[int, int, str]


def on_positive(metric: type[Metric], positive: int, **kwargs: Any) -> Metric:
    """A binary torchmetrics metric fed with the two-column probability matrix: the
    positive label's column and whether the target is that label."""

    class OnPositive(metric):  # type: ignore[misc, valid-type]
        def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
            super().update(preds[:, positive], (target == positive).long())

    OnPositive.__name__ = f"Positive{metric.__name__}"
    return OnPositive(**kwargs)


class Reliability(Metric):
    """The reliability diagram's numbers: per probability bin of the positive label, the
    mean predicted probability, the observed positive rate and the count."""

    full_state_update = False

    def __init__(self, positive: int, bins: int = 10) -> None:
        super().__init__()
        self.positive, self.bins = positive, bins
        for name in ("confidence", "observed", "count"):
            self.add_state(name, default=torch.zeros(bins, dtype=torch.float64),
                           dist_reduce_fx="sum")
        self.confidence: torch.Tensor
        self.observed: torch.Tensor
        self.count: torch.Tensor

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        probability = preds[:, self.positive].double()
        index = (probability * self.bins).long().clamp(0, self.bins - 1)
        ones = torch.ones_like(probability)
        self.confidence.index_add_(0, index, probability)
        self.observed.index_add_(0, index, (target == self.positive).double())
        self.count.index_add_(0, index, ones)

    def compute(self) -> torch.Tensor:
        return torch.stack([self.confidence, self.observed, self.count])



class SpanScores(Metric):
    """Exact-span true/false positives and false negatives per span type."""

    full_state_update = False
    tp: torch.Tensor  # counts per span type (metric states)
    fp: torch.Tensor
    fn: torch.Tensor

    def __init__(self, types: list[str]) -> None:
        super().__init__()
        self.types = types
        for name in ("tp", "fp", "fn"):
            self.add_state(name, torch.zeros(len(types), dtype=torch.long),
                           dist_reduce_fx="sum")

    def update(self, predicted: list[set[Span]], gold: list[set[Span]]) -> None:
        index = {t: i for i, t in enumerate(self.types)}
        for p, g in zip(predicted, gold, strict=True):
            for spans, state in ((p & g, self.tp), (p - g, self.fp), (g - p, self.fn)):
                for span in spans:
                    if span[2] in index:
                        state[index[span[2]]] += 1

    def compute(self) -> dict[str, Any]:
        def prf(tp: float, fp: float, fn: float) -> dict[str, float]:
            precision = tp / (tp + fp) if tp + fp else 0.0
            recall = tp / (tp + fn) if tp + fn else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            return {"precision": precision, "recall": recall, "f1": f1}

        tp, fp, fn = (s.tolist() for s in (self.tp, self.fp, self.fn))
        return {**prf(sum(tp), sum(fp), sum(fn)),
                "per_type": {t: {**prf(tp[i], fp[i], fn[i]), "support": tp[i] + fn[i]}
                             for i, t in enumerate(self.types) if tp[i] + fn[i] + fp[i]}}


class IntTargets(MetricCollection):
    """Torchmetrics' multilabel metrics take integer targets; the loss takes floats."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        super().update(preds, target.long())
