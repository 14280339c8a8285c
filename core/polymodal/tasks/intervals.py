"""Bootstrap confidence intervals of a two-label ranking (AUROC).

The percentile bootstrap: ``resamples`` draws of the records with replacement (seeded), the
AUROC of each, and the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those. A
draw is a vector of counts per record, so each resample's AUROC is a weighted Mann-Whitney
statistic over the scores sorted once (ties count one half): exact, and fast enough to
compute at every validation epoch. Records are resampled independently: where several
records belong to one patient, the interval is narrower than a patient-level one.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

RESAMPLES = 1000
LEVEL = 0.95
CHUNK = 100  # resamples per step: memory is CHUNK x distinct scores


def bootstrap_auroc(scores: torch.Tensor, positive: torch.Tensor, *,
                    resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0
                    ) -> tuple[float, float]:
    """The percentile bootstrap interval of AUROC of ``scores`` (higher: more likely
    positive) for the boolean ``positive``; NaN bounds when a class is missing."""
    scores = scores.detach().double().flatten().cpu()
    positive = positive.detach().bool().flatten().cpu()
    n = scores.numel()
    if n == 0 or positive.all() or not positive.any():
        return float("nan"), float("nan")
    values, inverse = torch.unique(scores, sorted=True, return_inverse=True)
    generator = torch.Generator().manual_seed(seed)
    aurocs = []
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        draws = torch.randint(0, n, (size, n), generator=generator)
        counts = torch.zeros(size, n, dtype=torch.float64).scatter_add_(
            1, draws, torch.ones(size, n, dtype=torch.float64))
        pos = torch.zeros(size, values.numel(), dtype=torch.float64).index_add_(
            1, inverse, counts * positive)
        neg = torch.zeros(size, values.numel(), dtype=torch.float64).index_add_(
            1, inverse, counts * ~positive)
        below = torch.cumsum(neg, dim=1) - neg  # negatives scored lower than each value
        wins = (pos * (below + 0.5 * neg)).sum(dim=1)
        pairs = pos.sum(dim=1) * neg.sum(dim=1)
        aurocs.append(torch.where(pairs > 0, wins / pairs.clamp(min=1), torch.nan))
    drawn = torch.cat(aurocs)
    drawn = drawn[~drawn.isnan()]
    low, high = torch.quantile(drawn, torch.tensor([(1 - level) / 2, (1 + level) / 2],
                                                   dtype=torch.float64)).tolist()
    return float(low), float(high)


class AurocInterval(Metric):
    """``bootstrap_auroc`` of the positive label's probability column, as a metric: the
    scores and targets are kept (and gathered across processes) and the interval computed
    at the end."""

    full_state_update = False

    def __init__(self, positive: int) -> None:
        super().__init__()
        self.positive = positive
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")
        self.scores: list[torch.Tensor] | torch.Tensor
        self.targets: list[torch.Tensor] | torch.Tensor

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        assert isinstance(self.scores, list) and isinstance(self.targets, list)
        self.scores.append(preds[:, self.positive].detach().float())
        self.targets.append(target == self.positive)

    def compute(self) -> torch.Tensor:
        scores = self.scores if isinstance(self.scores, torch.Tensor) else (
            torch.cat(self.scores) if self.scores else torch.zeros(0))
        targets = self.targets if isinstance(self.targets, torch.Tensor) else (
            torch.cat(self.targets) if self.targets else torch.zeros(0, dtype=torch.bool))
        return torch.tensor(bootstrap_auroc(scores, targets))
