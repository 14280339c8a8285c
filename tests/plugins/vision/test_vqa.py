"""vision.vqa: image + question through a core fusion. A short run on 1,200 questions with
the concat fusion and an MLP head (every core fusion is selectable; the default attention
fusion needs longer runs) must learn to count shapes, a question only the image answers,
well above the majority answer, and answer a count question with a number."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import polymodal
from tests.conftest import run_cli


def test_vqa_learns_to_count(tmp_path: Path) -> None:
    out = tmp_path / "vqa"
    result = run_cli("vision", "vqa", "train", "--out", str(out), "--set", "data.limit=1200",
                     "--set", "train.epochs=6", "--set", "ablation=false",
                     "--set", "fusion.name=concat", "--set", "fusion.options={}",
                     "--set", "task.options.hidden=256",
                     # Mixed batches: on ~190 images, batches of whole scenes would show the
                     # image encoder 10 images a step instead of 64. Four blocks: concat
                     # reads the pooled vector, which counts better from the deeper map.
                     "--set", "train.group_by=null", "--set", "inputs.0.options.blocks=4",
                     "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["test"]["n"] > 1000

    from polymodal_vision.vqa import load_demo

    counting = [r for r in load_demo().test if r["question"].startswith("how many")][:150]
    predictions = polymodal.load(out).predict(
        [{"image": r["image"], "question": r["question"]} for r in counting])
    # It reads the question: a "how many" question gets a number, not a colour or a shape.
    numeric = sum(p["label"] in {"1", "2", "3"} for p in predictions)
    assert numeric >= 0.9 * len(counting), collections.Counter(p["label"] for p in predictions)
    correct = sum(p["label"] == r["answer"] for p, r in zip(predictions, counting, strict=True))
    majority = collections.Counter(r["answer"] for r in counting).most_common(1)[0][1]
    # Measured: 79-81 of 150 right against 57 for the majority answer (6-10 epochs vary by
    # a few questions from one CPU to another); 10 points above the majority is the bar.
    assert correct > majority + 0.10 * len(counting), (correct, majority)
