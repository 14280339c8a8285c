"""The task contract: a head built from the fused dim, its loss, metrics and decoding.

Tasks also own their target: ``fit`` learns a label map or target scale from training
targets, ``encode_targets`` turns raw targets into a tensor, ``state``/``load_state``
round-trip what ``fit`` learned as JSON.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchmetrics import MetricCollection


class Task:
    """Base class for tasks. ``monitor`` names the default validation metric for early
    stopping and best-checkpoint selection; ``minimized`` lists metrics where lower is
    better."""

    monitor: str = "loss"
    # Metrics where lower is better; every other metric is maximised.
    minimized: tuple[str, ...] = ("loss",)
    output_dim: int

    def fit(self, targets: list[Any]) -> None:  # noqa: B027 - optional override
        """Learn the label map / target scale from training targets."""

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional override
        """Restore what ``state`` returned."""

    def encode_targets(self, targets: list[Any]) -> torch.Tensor:
        raise NotImplementedError

    def build_head(self, in_dim: int) -> nn.Module:
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self) -> MetricCollection:
        raise NotImplementedError

    def metric_inputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """What the metrics are updated with (probabilities, de-standardised values ...)."""
        return outputs

    def finalize_metrics(self, computed: dict[str, Any]) -> dict[str, Any]:
        """Turn computed metric tensors into JSON-able values."""
        return {k: float(v) for k, v in computed.items()}

    def decode(self, outputs: torch.Tensor) -> list[dict[str, Any]]:
        raise NotImplementedError

    def targets_valid(self, targets: list[Any]) -> list[bool]:
        """Which raw targets are usable; records with a missing target are skipped."""
        return [t is not None for t in targets]
