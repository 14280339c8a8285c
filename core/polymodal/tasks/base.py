"""The task contract: a head built from the fused dims, its loss over the batch, metrics,
its own targets in any structure, and decoding.

A task reads the pooled vector (``reads = "pooled"``: classification, regression) or the
fused token sequence (``reads = "tokens"``: tagging, span extraction, a box head over grid
cells). It owns its target: ``fit`` learns a label map or target scale from training
targets, ``collate_targets`` turns a batch's raw targets into whatever structure its loss
wants (a tensor, padded label sequences, a list of per-image dicts), and
``state``/``load_state`` round-trip what ``fit`` learned as JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import nn

from polymodal.fusions import FusedDims

if TYPE_CHECKING:
    # Imported where metrics are built: torchmetrics takes seconds to import, and
    # predicting and serving never need it.
    from torchmetrics import MetricCollection

Batch = dict[str, Any]


class Task:
    """Base class for tasks. ``monitor`` names the default validation metric for early
    stopping and best-checkpoint selection; ``minimized`` lists metrics where lower is
    better."""

    monitor: str = "loss"
    # Metrics where lower is better; every other metric is maximised.
    minimized: tuple[str, ...] = ("loss",)
    # What the head is given: the fused pooled vector [B, D] or token sequence [B, T, D].
    reads: ClassVar[Literal["pooled", "tokens"]] = "pooled"
    # Whether collate_targets / decode need the token field's alignment (character offsets
    # and word ids of each token, from its processor's ``with_alignment``) and raw values.
    needs_alignment: ClassVar[bool] = False
    # Whether collate_targets / decode need the batch's records themselves (``batch
    # ["records"]``): a box target is in pixels of the image the record names, whose size
    # the collated pixels (resized) no longer tell.
    needs_records: ClassVar[bool] = False
    output_dim: int

    def fit(self, targets: list[Any]) -> None:  # noqa: B027 - optional override
        """Learn the label map / target scale from training targets."""

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional override
        """Restore what ``state`` returned."""

    def collate_targets(self, targets: list[Any], batch: Batch) -> Any:
        """The batch's raw targets in the structure ``loss`` and the metrics take; ``batch``
        holds the collated inputs (and, with ``needs_alignment``, ``alignment`` and
        ``raw``) for targets that must line up with them."""
        raise NotImplementedError

    def build_head(self, dims: FusedDims) -> nn.Module:
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self) -> MetricCollection:
        raise NotImplementedError

    def update_metrics(self, metrics: MetricCollection, outputs: torch.Tensor,
                       batch: Batch) -> None:
        metrics.update(self.metric_inputs(outputs), batch["target"])

    def metric_inputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """What the metrics are updated with (probabilities, de-standardised values ...)."""
        return outputs

    def finalize_metrics(self, computed: dict[str, Any]) -> dict[str, Any]:
        """Turn computed metric tensors into JSON-able values."""
        return {k: float(v) for k, v in computed.items()}

    def decode(self, outputs: torch.Tensor, batch: Batch) -> list[dict[str, Any]]:
        raise NotImplementedError

    def combine_windows(self, text: str, parts: list[tuple[dict[str, Any], int, int, int]]
                        ) -> dict[str, Any]:
        """One answer for a text read in overlapping windows (a task that
        ``needs_alignment``, when the text is longer than the encoder's window). ``parts``:
        per window, its decoded result, where it starts in ``text`` and the character range
        ``[core_start, core_end)`` it is trusted for (the middle of each overlap is the
        boundary between two windows)."""
        raise NotImplementedError(f"{type(self).__name__} does not read long texts in windows")


def batch_size(batch: Batch) -> int:
    """Records in a collated batch (every input has a presence flag per record)."""
    return len(next(iter(batch["present"].values())))
