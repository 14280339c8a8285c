"""The component hub: one instance of a frozen pretrained encoder per process and device.

Two models, or two served endpoints, naming the same frozen encoder from the same source get
the same ``nn.Module`` object, so its weights sit in memory once. A shared module stays in
evaluation mode for good: a model that holds it may switch itself to training, but the
frozen encoder's dropout and normalisation statistics stay off (its ``train`` is pinned).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

HubKey = tuple[str, str, str, str, bool, str]


class ComponentHub:
    def __init__(self) -> None:
        self._items: dict[HubKey, nn.Module] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(name: str, source: str | None, device: torch.device, dtype: torch.dtype,
            frozen: bool, options: dict[str, Any]) -> HubKey:
        return (name, source or "", str(device), str(dtype), frozen,
                json.dumps(options, sort_keys=True, default=str))

    def get(self, key: HubKey, build: Callable[[], nn.Module]) -> nn.Module:
        """The cached module for ``key``, building (and freezing) it on first request."""
        with self._lock:
            module = self._items.get(key)
            if module is None:
                module = build()
                for param in module.parameters():
                    param.requires_grad_(False)
                module.eval()
                # nn.Module.train recurses through children by calling each one's
                # ``train``: pinned here, every holder's .train() leaves this one alone.
                # (a partial of a module-level function: it pickles and deep-copies)
                setattr(module, "train", functools.partial(_stay_in_eval, module))  # noqa: B010
                self._items[key] = module
            return module


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return self


_hub = ComponentHub()


def get_hub() -> ComponentHub:
    """The process-wide hub."""
    return _hub
