"""``regression``: one float target, standardised for training; MAE, RMSE and R2."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from polymodal.component_options import RegressionOptions
from polymodal.errors import DataError
from polymodal.fusions import FusedDims
from polymodal.options import parse_options
from polymodal.spec import TaskSpec
from polymodal.tasks.base import Batch, Task

if TYPE_CHECKING:
    from torchmetrics import MetricCollection


def _as_float(value: Any, target: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"target {target!r}: not a number: {value!r}") from None


class RegressionTask(Task):
    monitor = "rmse"
    minimized = ("loss", "mae", "rmse")
    output_dim = 1

    Options = RegressionOptions

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.dropout = parse_options(self.Options, spec.options, "task.options",
                                     f"task {spec.name!r}").dropout
        self.mean, self.std = 0.0, 1.0

    def fit(self, targets: list[Any]) -> None:
        values = [_as_float(t, self.spec.target) for t in targets if t is not None]
        if len(values) < 2:
            raise DataError(f"target {self.spec.target!r} needs at least 2 values")
        self.mean = sum(values) / len(values)
        var = sum((v - self.mean) ** 2 for v in values) / (len(values) - 1)
        self.std = math.sqrt(var) or 1.0

    def state(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}

    def load_state(self, state: dict[str, Any]) -> None:
        self.mean, self.std = float(state["mean"]), float(state["std"])

    def collate_targets(self, targets: list[Any], batch: Batch) -> torch.Tensor:
        return torch.tensor([_as_float(t, self.spec.target) for t in targets])

    def build_head(self, dims: FusedDims) -> nn.Module:
        return nn.Sequential(nn.Dropout(self.dropout), nn.Linear(int(dims.pooled or 0), 1))

    def _scaled(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().squeeze(-1) * self.std + self.mean

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.mse_loss(outputs.float().squeeze(-1),
                          (batch["target"] - self.mean) / self.std)

    def metrics(self) -> MetricCollection:
        from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

        return MetricCollection({
            "mae": MeanAbsoluteError(),
            "rmse": MeanSquaredError(squared=False),
            "r2": R2Score(),
        })

    def metric_inputs(self, outputs: torch.Tensor) -> torch.Tensor:
        return self._scaled(outputs)

    def decode(self, outputs: torch.Tensor, batch: Batch) -> list[dict[str, Any]]:
        return [{"value": round(float(v), 6)} for v in self._scaled(outputs).cpu().tolist()]
