"""Fuzz every endpoint of the OpenAPI schema (schemathesis, seeded): no 5xx answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import serving


def test_schemathesis_finds_no_server_error(review_model: Path) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    with serving([review_model]) as base:
        result = subprocess.run(
            [str(schemathesis), "run", f"{base}/openapi.json", "--checks",
             "not_a_server_error", "--max-examples", "50", "--seed", "1"],
            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
    generated = int(result.stdout.split(" generated,")[0].rsplit(maxsplit=1)[-1])
    assert generated >= 100  # every operation was exercised, not skipped
