"""One lifecycle for every registered scenario: the conformance kit's ``check_scenario``
(train, evaluate and predict through the CLI, provenance and card, served in process,
exported) over the whole registry, so a new scenario is checked without new test code.
Tracking plugins, torchrun, SIGTERM and resume on scenarios: test_lifecycle_runs.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from polymodal.registry import get_registry
from polymodal.testing import check_scenario


# Half of the registry here, the other half in test_lifecycle_second_half.py: pytest-xdist
# gives each file to one worker (--dist loadfile), so the two halves run side by side.
@pytest.mark.parametrize("name", get_registry().names("scenario")[0::2])
def test_every_scenario_passes_the_conformance_kit(name: str, tmp_path: Path) -> None:
    report = check_scenario(name, tmp_path)
    assert report["metrics"] and report["predictions"] and report["served"]


def test_every_scenario_is_registered_with_the_lifecycle() -> None:
    from polymodal.registry import get_registry
    from polymodal.scenario import Scenario, load_scenario

    for name in get_registry().names("scenario"):
        scenario = load_scenario(name)
        assert isinstance(scenario, Scenario), name
        assert scenario.load_demo is not None, name  # an embedded default
        # A scenario with its own kind of model says all of it: spec, fit and loader.
        assert (scenario.fit is None) == (scenario.spec_model is None) == (
            scenario.load_model is None), name
