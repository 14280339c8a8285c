"""Spec validation: one line naming the offending key or name and the closest valid ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from polymodal.errors import SpecError
from polymodal.spec import apply_overrides, check_columns, load_spec, parse_spec

BASE = {
    "name": "m",
    "inputs": [{"name": "review", "modality": "text", "encoder": "minilm"},
               {"name": "shop", "modality": "categorical", "encoder": "categorical"}],
    "fusion": {"name": "gated"},
    "task": {"name": "classification", "target": "label"},
}


def with_change(path: str, value: object) -> dict:
    return apply_overrides(BASE, [f"{path}={yaml.safe_dump(value).strip()}"])


def error_of(data: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_spec_parses() -> None:
    spec = parse_spec(BASE)
    assert spec.fusion.name == "gated" and spec.train.epochs == 3


def test_unknown_key_suggests_closest() -> None:
    message = error_of(with_change("train.epoch", 2))
    assert "'train.epoch'" in message and "'epochs'" in message


def test_group_by_must_name_an_input_and_leaves_with_it_in_an_ablation() -> None:
    message = error_of(with_change("train.group_by", "picture"))
    assert "'picture'" in message and "review, shop" in message
    spec = parse_spec(with_change("train.group_by", "shop"))
    assert spec.without_inputs(["review"]).train.group_by is None
    assert spec.without_inputs(["shop"]).train.group_by == "shop"


def test_unknown_top_level_key() -> None:
    message = error_of(with_change("fusoin", {"name": "concat"}))
    assert "'fusoin'" in message and "'fusion'" in message


def test_unknown_encoder_fusion_task() -> None:
    assert "'minilm'" in error_of(with_change("inputs.0.encoder", "minilmm"))
    assert "'gated'" in error_of(with_change("fusion.name", "gatd"))
    assert "'classification'" in error_of(with_change("task.name", "clasification"))


def test_encoder_modality_mismatch() -> None:
    assert "takes modality 'text'" in error_of(with_change("inputs.1.encoder", "minilm"))


def test_unknown_column_suggests_closest() -> None:
    spec = parse_spec(BASE)
    with pytest.raises(SpecError, match="'review'.*did you mean 'reviews'"):
        check_columns(spec, ["reviews", "shop", "label"], "data.csv")


def test_load_spec_resolves_paths_relative_to_the_file(tmp_path: Path) -> None:
    data = dict(BASE, data={"train": "train.csv"})
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    spec = load_spec(tmp_path / "s.yaml", ["train.epochs=1"])
    assert spec.data.train == str(tmp_path / "train.csv") and spec.train.epochs == 1


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("inputs: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(tmp_path / "bad.yaml")


def test_an_override_finds_a_named_list_item_by_its_name() -> None:
    changed = apply_overrides(BASE, ["inputs.shop.options.dim=8"])
    assert changed["inputs"][1]["options"] == {"dim": 8} and "options" not in BASE["inputs"][1]
    with pytest.raises(SpecError, match=r"'shopp' is not a list index \(0 to 1\) or a name "
                                        r"\(review, shop\)"):
        apply_overrides(BASE, ["inputs.shopp.options.dim=8"])
