"""vision.classify on digits, through the CLI: learns far above chance, predicts files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_digits_model_learns(digits_model: Path) -> None:
    metrics = json.loads((digits_model / "metrics.json").read_text())
    held_out = metrics.get("test") or metrics["validation"]
    assert held_out["accuracy"] >= 0.8  # 10 classes: chance is 0.1 (an 8-epoch quick run)


def test_predict_image_files_by_name(digits_model: Path) -> None:
    from polymodal_vision.datasets import digits

    records = digits()[-40:]
    result = run_cli("vision", "classify", "predict", str(digits_model),
                     *[r["image"] for r in records])
    assert result.returncode == 0, result.stderr
    predictions = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(predictions) == len(records)
    correct = sum(p["label"] == r["label"] for p, r in zip(predictions, records, strict=True))
    assert correct >= 0.7 * len(records), correct  # 10 classes: chance is 4 of 40
