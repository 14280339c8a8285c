"""``polymodal --help`` and the listings must not import torch (fast CLI start)."""

from __future__ import annotations

import json
import subprocess
import sys

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
