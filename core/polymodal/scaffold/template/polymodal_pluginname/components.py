"""The plugin's components: an encoder for its modality, a fusion and a task. Each follows
its contract in polymodal.plugin; tests/test_conformance.py checks them with
polymodal.testing."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC

from polymodal.plugin import (
    BuildContext,
    DataError,
    Encoder,
    EncoderOutput,
    FusedDims,
    FusedOutput,
    Fusion,
    InputSpec,
    Processor,
    Task,
    TaskSpec,
    options_of,
    prepare_processor,
)
from polymodal_pluginname.options import POINT


class PointProcessor(Processor):
    """Points -> ``{"xy": [B, 2], "missing": [B, 1]}``; runs in the collate step."""

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        xy = torch.zeros(len(values), 2)
        missing = torch.zeros(len(values), 1)
        for i, value in enumerate(values):
            if value is None:
                missing[i, 0] = 1.0
            elif isinstance(value, dict) and {"x", "y"} <= set(value):
                xy[i, 0], xy[i, 1] = float(value["x"]), float(value["y"])
            else:
                raise DataError(f'not a point {{"x": ..., "y": ...}}: {value!r}')
        return {"xy": xy, "missing": missing}


class PointEncoder(Encoder):
    """An MLP over the coordinates and the missing flag."""

    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        options = options_of(spec, POINT)
        self.processor = prepare_processor(PointProcessor(), context)
        self.output_dim = int(options["hidden"])
        self.mlp = nn.Sequential(nn.Linear(3, self.output_dim), nn.GELU(),
                                 nn.Linear(self.output_dim, self.output_dim), nn.GELU())

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        features = torch.cat([batch_field["xy"], batch_field["missing"]], dim=-1)
        return EncoderOutput(pooled=self.mlp(features))


class SumFusion(Fusion):
    """Each input projected to ``width``; the sum over the inputs a record has."""

    def __init__(self, input_dims: dict[str, int], width: int = 32) -> None:
        super().__init__(input_dims)
        self.output_dim = width
        self.project = nn.ModuleDict({f: nn.Linear(d, width) for f, d in input_dims.items()})

    def forward(self, outputs: dict[str, EncoderOutput],
                present: dict[str, torch.Tensor]) -> FusedOutput:
        total: torch.Tensor | None = None
        for field in self.fields:
            projected = self.project[field](outputs[field].pooled)
            # where(), not a product: an absent input's values (even NaN) must not count.
            part = torch.where(present[field].unsqueeze(-1), projected,
                               torch.zeros_like(projected))
            total = part if total is None else total + part
        assert total is not None
        return FusedOutput(pooled=total)


class BinaryTask(Task):
    """Two labels (learned from the training targets), one logit, binary cross-entropy."""

    monitor = "accuracy"

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.labels: list[str] = []
        self.output_dim = 1

    def fit(self, targets: list[Any]) -> None:
        self.labels = sorted({str(t) for t in targets if t is not None})
        if len(self.labels) != 2:
            raise DataError(f"target {self.spec.target!r} needs exactly 2 labels; found "
                            f"{self.labels}")

    def state(self) -> dict[str, Any]:
        return {"labels": self.labels}

    def load_state(self, state: dict[str, Any]) -> None:
        self.labels = list(state["labels"])

    def collate_targets(self, targets: list[Any], batch: dict[str, Any]) -> torch.Tensor:
        unknown = [t for t in targets if str(t) not in self.labels]
        if unknown:
            raise DataError(f"target {self.spec.target!r}: {unknown[0]!r} is not one of "
                            f"{self.labels}")
        return torch.tensor([self.labels.index(str(t)) for t in targets])

    def build_head(self, dims: FusedDims) -> nn.Module:
        width = int(dims.pooled or 0)
        return nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))

    def loss(self, outputs: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(outputs.float().squeeze(-1),
                                                  batch["target"].float())

    def metrics(self) -> MetricCollection:
        return MetricCollection({"accuracy": BinaryAccuracy(), "auroc": BinaryAUROC()})

    def metric_inputs(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(outputs.float().squeeze(-1))

    def decode(self, outputs: torch.Tensor, batch: dict[str, Any]) -> list[dict[str, Any]]:
        probabilities = self.metric_inputs(outputs).cpu().tolist()
        return [{"label": self.labels[int(p >= 0.5)], "score": round(max(p, 1 - p), 6),
                 "scores": {self.labels[0]: round(1 - p, 6), self.labels[1]: round(p, 6)}}
                for p in probabilities]
