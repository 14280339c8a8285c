"""The component hub: one copy of a frozen encoder, whoever uses it."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from polymodal.model import build_model, build_task
from polymodal.spec import parse_spec
from tests.conftest import review_rows


def spec_with(source: Path, frozen: bool, fusion: str) -> dict:
    return {
        "inputs": [{"name": "review", "modality": "text", "encoder": "hf-text",
                    "source": str(source), "frozen": frozen},
                   {"name": "shop", "modality": "categorical", "encoder": "categorical"}],
        "fusion": {"name": fusion},
        "task": {"name": "classification", "target": "label"},
    }


def build(data: dict):
    spec = parse_spec(data)
    task = build_task(spec)
    rows = review_rows(20)
    task.fit([r["label"] for r in rows])
    return build_model(spec, task=task, train_records=rows)


def test_two_models_share_one_frozen_encoder(tiny_bert: Path) -> None:
    first = build(spec_with(tiny_bert, True, "gated"))
    second = build(spec_with(tiny_bert, True, "attention"))
    assert first.encoders["review"] is second.encoders["review"]
    assert first.encoders["shop"] is not second.encoders["shop"]
    assert not any(p.requires_grad for p in first.encoders["review"].parameters())
    # Training one model must not switch the shared encoder out of eval mode: the hub
    # pins it, for any module that holds it (a scenario's own network as well as a spec
    # model), down to its dropout layers, and a deep copy (a weight average) keeps the pin.
    first.train()
    assert not second.encoders["review"].training
    holder = torch.nn.Sequential(second.encoders["review"], torch.nn.Dropout()).train()
    assert holder[1].training
    assert not any(m.training for m in second.encoders["review"].modules())
    copied = copy.deepcopy(holder).train()
    assert not any(m.training for m in copied[0].modules())
    assert copied[0] is not second.encoders["review"]
    # Shared weights are left out of each model's own weights file.
    assert not any(k.startswith("encoders.review.") for k in first.trainable_state_dict())


def test_trainable_encoders_are_not_shared(tiny_bert: Path) -> None:
    first = build(spec_with(tiny_bert, False, "concat"))
    second = build(spec_with(tiny_bert, False, "concat"))
    assert first.encoders["review"] is not second.encoders["review"]
