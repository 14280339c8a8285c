from __future__ import annotations

import pytest
import torch

from polymodal import device as device_mod
from polymodal.device import autocast_dtype, pick_device


def test_explicit_device_wins() -> None:
    assert pick_device("cpu") == torch.device("cpu")


def test_precision_choices_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16
    assert autocast_dtype(cpu, "fp16") is None  # no fp16 autocast on CPU
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: False)
    assert autocast_dtype(cpu, "auto") is None
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: True)
    assert autocast_dtype(cpu, "auto") is torch.bfloat16
