"""The conformance kit (polymodal.testing) over every built-in component, and on broken ones:
a new built-in encoder, fusion or task is checked here without new test code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from polymodal.registry import get_registry
from polymodal.testing import ConformanceError, check_encoder, check_fusion, check_task

TEXTS = ["a short review", "a much longer review, with many more words in it than the first"]
# Encoders that need more than their modality's samples: a source, options for a small
# build (the torchvision backbones at 32 px).
ENCODER_ARGS: dict[str, dict[str, Any]] = {
    "small-cnn": {"options": {"image_size": 32, "output_dim": 32, "width": 8}},
    "dicom-image": {"options": {"backbone_options": {"image_size": 32, "output_dim": 32,
                                                     "width": 8}}},
    # the embedded recogniser of speech.commands --quick (120 utterances, one epoch)
    "asr-transcript": {"options": {"embedded_utterances": 120, "embedded_epochs": 1}},
}
# Fusion options to check besides the defaults (the token-sequence modes).
FUSION_OPTIONS: dict[str, list[dict[str, Any]]] = {
    "attention": [{}, {"tokens": True, "query": "first"}],
    "find": [{"query": "first", "objects": "second"},
             {"query": "first", "objects": "second", "heads": 2, "roles": 0}],
}
# Targets per task: raw values as a data file holds them.
TASK_TARGETS: dict[str, list[Any]] = {
    "classification": ["pos", "neg", "neg", "neutral", "pos"],
    "multilabel": ["tea|sweet", "coffee", "tea", "", "coffee|sweet"],
    "regression": [1.0, 2.5, 0.25, 4.0, 3.0],
}
# Tasks that read token alignment are checked end to end (nlp.ner in test_lifecycle.py).
ALIGNED_TASKS = {"token-classification"}


def _digits(count: int) -> list[str]:
    from polymodal_vision.datasets import digits

    return [r["image"] for r in digits()[:count]]


def _dicom(count: int) -> list[str]:
    from pydicom.data import get_testdata_file

    return [str(get_testdata_file(n)) for n in ("CT_small.dcm", "MR_small.dcm")][:count]


def _audio(count: int) -> list[str]:
    """Tones of different lengths (0.5 s, 0.8 s ...) as 16 kHz WAV files."""
    import tempfile

    import numpy as np
    import soundfile

    folder = Path(tempfile.mkdtemp(prefix="audio-values-"))
    paths = []
    for index in range(count):
        seconds = np.arange(int(16000 * (0.5 + 0.3 * index))) / 16000
        path = folder / f"tone{index}.wav"
        soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * 440 * (index + 1) * seconds),
                        16000)
        paths.append(str(path))
    return paths


def _values(modality: str) -> list[Any] | None:
    if modality == "audio":
        return _audio(3)
    if modality == "image":
        return _digits(3)
    if modality == "dicom":
        return _dicom(2)
    if modality == "text":
        return TEXTS
    return None  # the modality's own samples


@pytest.mark.parametrize("name", get_registry().names("encoder"))
def test_every_built_in_encoder_keeps_the_contract(name: str, tiny_bert: Path) -> None:
    entry = get_registry().get("encoder", name)
    args = dict(ENCODER_ARGS.get(name, {}))
    if name == "hf-text":
        args["source"] = str(tiny_bert)
    if entry.modality == "image" and name != "small-cnn":
        args["options"] = {"image_size": 32}
    check_encoder(name, _values(entry.modality or ""), **args)


@pytest.mark.parametrize("name,options", [
    (name, options) for name in get_registry().names("fusion")
    for options in FUSION_OPTIONS.get(name, [{}])])
def test_every_built_in_fusion_handles_every_subset_of_inputs(name: str,
                                                              options: dict[str, Any]) -> None:
    check_fusion(name, options=options)


# Tasks whose targets need their records (a box in pixels of its image): checked with a
# batch of records naming images of known sizes, on a 4x4 grid of token states.
BOX_TASKS = {"box", "box-cells"}


@pytest.mark.parametrize("name", [n for n in get_registry().names("task")
                                  if n not in ALIGNED_TASKS | BOX_TASKS])
def test_every_built_in_task_keeps_the_contract(name: str) -> None:
    assert name in TASK_TARGETS, f"add example targets for task {name!r} to TASK_TARGETS"
    check_task(name, TASK_TARGETS[name])


@pytest.mark.parametrize("name", sorted(BOX_TASKS))
def test_the_box_tasks_keep_the_contract(name: str, tmp_path: Path) -> None:
    import torch
    from PIL import Image

    sizes = [(64, 64), (80, 40), (32, 48)]
    records = []
    for index, size in enumerate(sizes):
        Image.new("RGB", size).save(tmp_path / f"{index}.png")
        records.append({"image": str(tmp_path / f"{index}.png")})
    batch = {"present": {"image": torch.ones(3, dtype=torch.bool)}, "records": records}
    check_task(name, [[4, 4, 20, 30], [10, 5, 60, 30], [0, 0, 32, 48]], batch=batch,
               tokens=16)
    with pytest.raises(ConformanceError, match="needs its records"):
        check_task(name, [[4, 4, 20, 30]])


# --- broken components: the kit says what is wrong ---------------------------------------

BROKEN = '''
import torch
from torch import nn
from polymodal.plugin import (Encoder, EncoderOutput, Fusion, FusedOutput, Processor,
                              RegisterEncoder, RegisterFusion, RegisterModality, hookimpl)


class Lengths(Processor):
    """Texts -> character codes, padded with zeros, and a mask."""

    def __call__(self, values):
        texts = [v or "" for v in values]
        width = max(len(t) for t in texts) or 1
        codes = torch.zeros(len(texts), width, dtype=torch.long)
        for i, text in enumerate(texts):
            codes[i, : len(text)] = torch.tensor([ord(c) % 50 for c in text], dtype=torch.long)
        return {"codes": codes, "mask": codes > 0}


class WrongWidth(Encoder):
    def __init__(self, spec, context):
        super().__init__()
        self.processor = Lengths()
        self.output_dim = 8
        self.embed = nn.Embedding(50, 6)  # six wide, not the eight it promises

    def forward(self, batch):
        return EncoderOutput(pooled=self.embed(batch["codes"]).mean(1))


class IgnoresMask(WrongWidth):
    def __init__(self, spec, context):
        super().__init__(spec, context)
        self.embed = nn.Embedding(50, 8)

    def forward(self, batch):  # averages the padding in: depends on the batch's longest text
        return EncoderOutput(pooled=self.embed(batch["codes"]).mean(1))


class ForgetsPresence(Fusion):
    def __init__(self, input_dims):
        super().__init__(input_dims)
        self.output_dim = sum(input_dims.values())

    def forward(self, outputs, present):
        return FusedOutput(pooled=torch.cat([outputs[f].pooled for f in self.fields], -1))


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    register("wrong-width", WrongWidth, modality="text")
    register("ignores-mask", IgnoresMask, modality="text")


@hookimpl
def register_fusions(register: RegisterFusion) -> None:
    register("forgets-presence", ForgetsPresence)
'''


@pytest.fixture()
def broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from polymodal import plugins, registry
    from polymodal.testing import make_distribution

    make_distribution(tmp_path, "polymodal_broken", BROKEN, entry_point="broken")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "_manager", None)
    registry.reset_registry()
    yield
    sys.modules.pop("polymodal_broken", None)
    monkeypatch.setattr(plugins, "_manager", None)
    registry.reset_registry()


def test_an_encoder_of_the_wrong_width_fails_saying_so(broken_plugin: None) -> None:
    with pytest.raises(ConformanceError, match=r"pooled is \[3, 6\].*needs \[3, 8\]"):
        check_encoder("wrong-width", TEXTS)


def test_an_encoder_that_ignores_the_mask_fails_saying_so(broken_plugin: None) -> None:
    with pytest.raises(ConformanceError, match="changes with the batch around it.*use the "
                                               "mask"):
        check_encoder("ignores-mask", TEXTS)


def test_a_fusion_that_ignores_presence_fails_saying_so(broken_plugin: None) -> None:
    with pytest.raises(ConformanceError, match="change pooled where it is absent.*present"):
        check_fusion("forgets-presence")


def test_a_task_that_needs_alignment_asks_for_its_batch() -> None:
    with pytest.raises(ConformanceError, match="needs token alignment"):
        check_task("token-classification", ["x"])
