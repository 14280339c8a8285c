"""Which records a scenario trains and is scored on: the embedded data (or the data for
the spec, ``spec_demo``), ``--test`` honoured with or without ``--data``, and the overrides
``polymodal demo`` applies before the quick ones."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from polymodal.scenario import DemoData, Scenario, scenario_records, scenario_spec


class BackendSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: str = "pretrained"
    epochs: int = 3
    scenario: str = "x.data"


def _scenario() -> Scenario:
    def default() -> DemoData:
        return DemoData(train=[{"v": 1}], test=[{"v": 2}], source="default")

    def for_spec(spec: BackendSpec) -> DemoData:
        if spec.backend == "pretrained":
            return default()
        return DemoData(train=[{"v": 10}, {"v": 11}], test=[{"v": 12}], source="corpus")

    return Scenario(name="x.data", description="", default_spec={}, load_demo=default,
                    spec_model=BackendSpec, fit=lambda request: {}, load_model=lambda d: d,
                    spec_demo=for_spec, demo_overrides=["backend=trained"],
                    quick_overrides=["epochs=1"])


def test_the_embedded_data_follow_the_spec_and_the_demo_applies_its_overrides() -> None:
    scenario = _scenario()
    plain = scenario_spec(scenario)
    demo = scenario_spec(scenario, ["epochs=7"], quick=True, demo=True)
    assert (plain.backend, plain.epochs) == ("pretrained", 3)
    assert (demo.backend, demo.epochs) == ("trained", 7)  # demo, then quick, then the user's
    assert scenario_records(scenario, quick=False, spec=plain)[2].source == "default"
    train, test, data = scenario_records(scenario, quick=False, spec=demo)
    assert data.source == "corpus" and train == [{"v": 10}, {"v": 11}] and test == [{"v": 12}]


def test_a_test_file_is_scored_with_or_without_training_data(tmp_path: Path) -> None:
    scenario = _scenario()
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(json.dumps({"v": 99}) + "\n")
    train_file = tmp_path / "train.jsonl"
    train_file.write_text(json.dumps({"v": 98}) + "\n")
    train, test, _ = scenario_records(scenario, quick=True, test_path=str(test_file))
    assert train == [{"v": 1}] and test == [{"v": 99}]  # the embedded training records
    train, test, _ = scenario_records(scenario, quick=False, train_path=str(train_file),
                                      test_path=str(test_file))
    assert train == [{"v": 98}] and test == [{"v": 99}]
