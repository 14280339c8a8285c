"""``polymodal --help`` and the listings must not import torch (fast CLI start)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import io, sys, contextlib
from polymodal.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main({args!r})
    except SystemExit:
        pass
heavy = sorted(m for m in ("torch", "transformers", "torchmetrics", "numpy") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["plugins", "--json"], ["components", "--json"],
                                  ["scenarios", "--json"], ["nlp", "sentiment", "--help"]])
def test_listing_imports_no_torch(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=args)],
                            capture_output=True, text=True, timeout=120)
    assert "HEAVY=\n" in result.stderr or result.stderr.strip().endswith("HEAVY="), result.stderr


def test_scenarios_json_lists_sentiment() -> None:
    result = subprocess.run([sys.executable, "-m", "polymodal.cli.main", "scenarios", "--json"],
                            capture_output=True, text=True, timeout=120)
    scenarios = {s["name"]: s for s in json.loads(result.stdout)}
    assert scenarios["nlp.sentiment"]["plugin"] == "nlp"


def test_predicting_imports_no_metrics_library(review_model: Path, tmp_path: Path) -> None:
    """Predicting (and so serving) never needs torchmetrics, which takes seconds to import:
    a task builds its metrics only to train or evaluate."""
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"review": "great snack"}) + "\n")
    args = ["predict", str(review_model), "--input", str(records), "--device", "cpu"]
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=args)],
                            capture_output=True, text=True, timeout=300)
    heavy = result.stderr.strip().rpartition("HEAVY=")[2].split(",")
    assert "torch" in heavy, result.stderr  # it did predict
    assert "torchmetrics" not in heavy
