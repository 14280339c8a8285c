"""The plugin against polymodal's contracts (polymodal.testing), and what it learns."""

from __future__ import annotations

from pathlib import Path

from polymodal.testing import check_encoder, check_fusion, check_scenario, check_task


def test_the_encoder_keeps_the_encoder_contract() -> None:
    check_encoder("pluginname-point-mlp")  # on the modality's sample points


def test_the_fusion_handles_every_subset_of_inputs() -> None:
    check_fusion("pluginname-sum")


def test_the_task_keeps_the_task_contract() -> None:
    check_task("pluginname-binary", ["inside", "outside", "outside", "inside"])


def test_the_scenario_trains_serves_and_beats_the_majority(tmp_path: Path) -> None:
    # limit_batches=None: the whole quick run, so that what it learns can be checked too
    report = check_scenario("pluginname.inside", tmp_path, limit_batches=None)
    assert report["metrics"]["accuracy"] > 0.75  # the majority label scores about 0.6
    assert report["predictions"][0]["label"] == "inside"  # (0.0, 0.1)
    assert report["predictions"][1]["label"] == "outside"  # (0.9, -0.9)
