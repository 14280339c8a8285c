"""A small digits classifier shared by the vision tests (trained once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from polymodal.scenario import load_scenario, run_scenario

    out = tmp_path_factory.mktemp("digits") / "digits"
    run_scenario(load_scenario("vision.classify"), out, quick=True, progress=False,
                 overrides=["train.epochs=8"])
    return out
