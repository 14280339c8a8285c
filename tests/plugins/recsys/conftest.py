"""A recsys.cf model trained once on the embedded MovieLens for the recsys tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="session")
def cf_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cf") / "model"
    result = run_cli("recsys", "cf", "train", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)["metrics"]
