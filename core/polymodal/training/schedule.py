"""Optimizer groups and the learning-rate schedule every model trains with."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Linear warmup, then cosine or linear decay to zero, or constant."""
    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        if schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def decay_groups(named: Iterable[tuple[str, nn.Parameter]], lr: float, weight_decay: float,
                 lr_of: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """AdamW groups: a learning rate per parameter-name prefix (``lr_of``), no weight decay
    on biases and norms (parameters with fewer than two dimensions)."""
    lr_of = lr_of or {}
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in named:
        if not param.requires_grad:
            continue
        group_lr = next((v for k, v in lr_of.items() if name.startswith(k)), lr)
        decay = 0.0 if param.ndim < 2 else weight_decay
        groups.setdefault((group_lr, decay), []).append(param)
    return [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]
