"""``polymodal export``: ONNX (run by onnxruntime) and TorchScript (torch.jit) reproduce the
model's outputs to 1e-4; a model whose forward cannot be captured is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import polymodal
from polymodal.data.collate import Collator
from polymodal.testing import make_distribution
from tests.conftest import review_rows, run_cli, write_csv

RECORDS = [{"review": r["review"]} for r in review_rows(12, seed=5)]
RECORDS[3]["review"] = "tasty " * 10 + "and fresh"  # a longer one: other padding


def original_probabilities(model_dir: Path) -> torch.Tensor:
    scores = polymodal.load(model_dir).predict(RECORDS)
    labels = list(scores[0]["scores"])
    return torch.tensor([[s["scores"][label] for label in labels] for s in scores])


def collated(model_dir: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The processors' tensors for RECORDS, under the exported input names."""
    model = polymodal.load(model_dir).model
    batch = Collator(model.spec, model.processors, None)(RECORDS)
    tensors = {f"review.{key}": value for key, value in batch["inputs"]["review"].items()}
    tensors["review.present"] = batch["present"]["review"]
    return {name: tensors[name].numpy() for name in names}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_the_model(review_model: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"reviews.{fmt}"
    result = run_cli("export", str(review_model), "--format", fmt, "--out", str(out),
                     "--json")
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((tmp_path / f"reviews.{fmt}.json").read_text())
    assert sidecar["labels"] == ["neg", "pos"]
    assert sidecar["inputs"][0] == "review.input_ids"
    assert sidecar["inputs"][-1] == "review.present"
    feed = collated(review_model, sidecar["inputs"])
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        logits = torch.from_numpy(session.run(None, {k: v for k, v in feed.items()
                                                     if k in names})[0])
    else:
        module = torch.jit.load(str(out))
        logits = module(*(torch.from_numpy(v) for v in feed.values()))
    torch.testing.assert_close(logits.softmax(-1), original_probabilities(review_model),
                               atol=1e-4, rtol=0)


NOT_TRACEABLE = '''
from polymodal import hookimpl
from polymodal.fusions import ConcatFusion, FusedOutput


class BatchMaxNorm(ConcatFusion):
    """Concatenation scaled by the batch's largest activation, read as a Python number:
    a value tracing bakes in as a constant."""

    def forward(self, outputs, present):
        fused = super().forward(outputs, present).pooled
        return FusedOutput(pooled=fused / float(fused.abs().max()))


@hookimpl
def register_fusions(register):
    register("batch-max-norm", BatchMaxNorm, description="concat / batch max")
'''


def test_a_model_that_cannot_be_traced_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "polymodal_maxnorm", NOT_TRACEABLE, entry_point="maxnorm")
    env = {"PYTHONPATH": str(site)}
    write_csv(tmp_path / "train.csv", review_rows(80))
    spec = {"data": {"train": "train.csv"},
            "inputs": [{"name": "price", "modality": "numeric", "encoder": "numeric"}],
            "fusion": {"name": "batch-max-norm"},
            "task": {"name": "classification", "target": "label"},
            "train": {"epochs": 1}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    trained = run_cli("train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "m"),
                      env=env)
    assert trained.returncode == 0, trained.stderr
    for fmt in ("torchscript", "onnx"):
        out = tmp_path / f"m.{fmt}"
        result = run_cli("export", str(tmp_path / "m"), "--format", fmt, "--out", str(out),
                         env=env)
        assert result.returncode == 2
        message = result.stderr.strip()
        assert message.startswith(f"error: cannot export {tmp_path / 'm'} to {fmt}: the "
                                  "exported graph differs from the model"), message
        assert len(message.splitlines()) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "site", "spec.yaml",
                                                              "train.csv"]
