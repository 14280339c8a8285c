"""The conformance kit over the other half of the registered scenarios (the first half is in
test_lifecycle.py): a file of its own so that pytest-xdist runs the halves on two workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from polymodal.registry import get_registry
from polymodal.testing import check_scenario


@pytest.mark.parametrize("name", get_registry().names("scenario")[1::2])
def test_every_scenario_passes_the_conformance_kit(name: str, tmp_path: Path) -> None:
    report = check_scenario(name, tmp_path)
    assert report["metrics"] and report["predictions"] and report["served"]
