"""A plain training loop for scenario models that are not encoder -> fusion -> head networks
(contrastive retrieval, captioning, token classification, span extraction): AdamW, warmup +
cosine (the core trainer's schedule), gradient clipping, autocast, seeded; the loss function
is the caller's."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from polymodal.device import autocast
from polymodal.errors import SpecError


class LoopTrain(BaseModel):
    """The ``train`` section of the specs trained by ``fit_loop``."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2.0e-3
    warmup: float = 0.05
    seed: int = 0


def parse_model_spec(cls: type[BaseModel], data: dict[str, Any]) -> Any:
    """A pydantic spec, or a one-line SpecError naming the first bad key."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SpecError(f"spec {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def fit_loop(module: nn.Module, batches: Callable[[int], Iterable[Any]],
             loss_fn: Callable[[Any], torch.Tensor], *, epochs: int, lr: float,
             steps_per_epoch: int, warmup: float = 0.05, weight_decay: float = 0.01,
             device: torch.device, dtype: torch.dtype | None = None,
             log: Callable[[str], None] | None = None) -> list[dict[str, float]]:
    """Train ``module`` in place; ``batches(epoch)`` yields the epoch's batches. Returns the
    mean training loss per epoch."""
    from polymodal.training import lr_lambda

    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = max(1, epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda("cosine", int(warmup * total), total))
    history = []
    for epoch in range(epochs):
        module.train()
        started, losses = time.perf_counter(), []
        for batch in batches(epoch):
            with autocast(device, dtype):
                loss = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        mean = sum(losses) / max(len(losses), 1)
        history.append({"epoch": epoch + 1, "train_loss": mean,
                        "seconds": time.perf_counter() - started})
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {mean:.4f} "
                f"({time.perf_counter() - started:.1f} s)")
    module.eval()
    return history
