"""vision.classify on digits, through the CLI: learns far above chance, predicts files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_digits_model_learns(digits_model: Path) -> None:
    metrics = json.loads((digits_model / "metrics.json").read_text())
    held_out = metrics.get("test") or metrics["validation"]
    assert held_out["accuracy"] >= 0.8  # 10 classes: chance is 0.1 (an 8-epoch quick run)


def test_predict_an_image_file_by_name(digits_model: Path) -> None:
    from polymodal_vision.datasets import digits

    record = next(r for r in digits()[-50:] if r["label"] == "0")
    result = run_cli("vision", "classify", "predict", str(digits_model), record["image"])
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout.splitlines()[0])
    assert set(prediction["scores"]) == {str(d) for d in range(10)}
