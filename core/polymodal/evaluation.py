"""Running a model over batches: metrics for evaluation, decoded outputs for prediction."""

from __future__ import annotations

from typing import Any

import torch

from polymodal.data.collate import move_batch
from polymodal.device import autocast
from polymodal.distributed import sum_across
from polymodal.model import MultimodalModel
from polymodal.tasks.base import batch_size


@torch.inference_mode()
def evaluate_batches(model: MultimodalModel, loader: Any, device: torch.device,
                     dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Loss and task metrics over every batch of ``loader``."""
    task = model.task
    metrics = task.metrics().to(device)
    was_training = model.training
    model.eval()
    total_loss, count = 0.0, 0
    for batch in loader:
        batch = move_batch(batch, device)
        with autocast(device, dtype):
            outputs = model(batch["inputs"], batch["present"])
        size = batch_size(batch)
        total_loss += float(task.loss(outputs, batch)) * size
        count += size
        task.update_metrics(metrics, outputs, batch)
    model.train(was_training)
    result = task.finalize_metrics(metrics.compute())  # torchmetrics syncs across ranks
    total_loss, total = sum_across([total_loss, float(count)], device)
    result["loss"] = total_loss / max(total, 1.0)
    result["n"] = int(total)
    return result


@torch.inference_mode()
def predict_batches(model: MultimodalModel, loader: Any, device: torch.device,
                    dtype: torch.dtype | None = None) -> list[dict[str, Any]]:
    if model.training:  # eval() walks every submodule: not once per served request
        model.eval()
    results: list[dict[str, Any]] = []
    for batch in loader:
        batch = move_batch(batch, device)
        with autocast(device, dtype):
            outputs = model(batch["inputs"], batch["present"])
        results.extend(model.task.decode(outputs, batch))
    return results
