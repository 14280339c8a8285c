"""An exponential moving average of the weights (``train.ema``), as diffusion models and
many image models are evaluated and shipped with.

After every optimizer step each floating-point tensor of the model's state moves towards
the current weights: ``avg <- avg + (1 - d) (w - avg)`` with ``d = min(decay, (1 + n) /
(10 + n))`` at update ``n`` (the warm-up of timm's and diffusers' EMA, so early averages
are not dominated by the random initialisation). Validation, the best epoch and the saved
model use the averaged weights; the raw ones keep training and are what a checkpoint
resumes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from polymodal.training.steps import Trainable


class WeightAverage:
    def __init__(self, steps: Trainable, decay: float) -> None:
        self.steps, self.decay = steps, decay
        self.updates = 0
        self.shadow = {name: value.detach().clone()
                       for name, value in steps.state_dict().items()
                       if value.is_floating_point()}

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = self.steps.state_dict()
        for name, average in self.shadow.items():
            average.lerp_(current[name].detach().to(average.dtype), 1.0 - decay)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the model for the block, the trained ones after it."""
        state = self.steps.state_dict()
        trained = {name: state[name].detach().clone() for name in self.shadow}
        self.steps.load_state_dict({**state, **self.shadow})
        try:
            yield
        finally:
            self.steps.load_state_dict({**self.steps.state_dict(), **trained})

    def state(self) -> dict[str, Any]:
        return {"updates": self.updates, "shadow": {k: v.cpu() for k, v in self.shadow.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
