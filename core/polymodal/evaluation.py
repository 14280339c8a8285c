"""Running a model over held-out batches: loss and task metrics, as the Trainer validates."""

from __future__ import annotations

from typing import Any

import torch

from polymodal.data.collate import move_batch
from polymodal.device import autocast
from polymodal.model import MultimodalModel


@torch.inference_mode()
def evaluate_batches(model: MultimodalModel, loader: Any, device: torch.device,
                     dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Loss and task metrics over every batch of ``loader``: the same validation step the
    Trainer runs each epoch (``SpecModelSteps``), so held-out and validation metrics are
    computed one way."""
    from polymodal.training.steps import SpecModelSteps

    steps = SpecModelSteps(model.spec, model, device)
    was_training = model.training
    model.eval()
    for batch in loader:
        with autocast(device, dtype):
            steps.validation_step(model, move_batch(batch, device))
    model.train(was_training)
    return steps.compute_metrics()  # torchmetrics and the loss sum sync across ranks
