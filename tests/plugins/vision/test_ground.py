"""vision.ground: referring phrases that name exactly one object, the box task's pixels <->
fractions round trip, a small grounding model that points at the named object more often
than a random pick, and a bad box refused in one line."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from polymodal.testing import run_cli


def _fits(phrase: str, shape: object, shapes: list) -> bool:
    """An independent reading of a phrase: does ``shape`` fit it in its scene?"""
    from polymodal_vision.scenes import RELATIONS, holds

    words = phrase.removeprefix("the ")
    for relation in RELATIONS:
        if f" {relation} the " in words:
            head, anchor_kind = words.split(f" {relation} the ")
            anchors = [s for s in shapes if s.kind == anchor_kind]
            if len(anchors) != 1 or shape is anchors[0]:
                return False
            described = head.split()
            kind_or_colour = described[0]
            return (shape.kind == kind_or_colour or shape.color == kind_or_colour) and holds(
                shape, anchors[0], relation)
    described = words.split()
    return [shape.size, shape.color, shape.kind][-len(described):] == described


def test_every_phrase_names_exactly_one_object() -> None:
    from polymodal_vision.object_scenes import place_objects
    from polymodal_vision.phrases import referring_phrases

    rng = random.Random(4)
    kinds = set()
    for _ in range(300):
        shapes = place_objects(rng, rng.randint(1, 6), 64)
        for phrase, index in referring_phrases(shapes):
            fitting = [s for s in shapes if _fits(phrase, s, shapes)]
            assert fitting == [shapes[index]], phrase
            kinds.add("relation" if " the " in phrase.removeprefix("the ") else
                      len(phrase.split()))
    assert kinds == {3, 4, "relation"}  # colour+shape, size+colour+shape, relations


def test_the_box_task_turns_pixels_into_fractions_and_back(tmp_path: Path) -> None:
    import torch
    from PIL import Image

    from polymodal.plugin import TaskSpec
    from polymodal_vision.box_task import BoxTask, GridBoxTask

    Image.new("RGB", (80, 40)).save(tmp_path / "wide.png")
    batch = {"records": [{"image": str(tmp_path / "wide.png")}]}
    task = BoxTask(TaskSpec(name="box", target="box"))
    target = task.collate_targets([[20, 10, 40, 20]], batch)
    assert target["boxes"].tolist() == [[0.5, 0.5, 0.5, 0.5]]
    assert task.decode(target["boxes"], batch) == [{"box": [20.0, 10.0, 40.0, 20.0]}]
    cells = GridBoxTask(TaskSpec(name="box-cells", target="box"))
    outputs = torch.zeros(1, 16, 5)
    outputs[0, 6, 0] = 5.0  # row 1, column 2 of a 4x4 grid: centre (2.5, 1.5) / 4
    assert cells.decode(outputs, batch) == [{"box": [30.0, 5.0, 40.0, 20.0]}]
    with pytest.raises(Exception, match="not a box inside its 80x40 image"):
        task.collate_targets([[70, 10, 40, 20]], batch)


@pytest.fixture(scope="module")
def grounding_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from polymodal_vision.ground import grounding_records
    from polymodal_vision.object_scenes import generate

    root = tmp_path_factory.mktemp("ground")
    files = {}
    for name, count, seed in (("train", 800, 31), ("test", 100, 32)):
        scenes = [json.loads(line) for line in generate(root / name, count, size=64,
                                                        seed=seed)["objects"].read_text()
                  .splitlines()]
        files[name] = root / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n"
                                       for r in grounding_records(scenes, seed)))
    return files["train"], files["test"]


def test_a_small_grounding_model_points_at_the_named_object(
        grounding_data: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = grounding_data
    out = tmp_path / "model"
    result = run_cli("vision", "ground", "train", "--data", str(train), "--test", str(test),
                     "--out", str(out), "--json", "--set", "train.epochs=5",
                     "--set", "ablation=false")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    chance = metrics["baselines"]["random object"]["accuracy"]
    assert metrics["test"]["accuracy"] > chance + 0.05
    first = json.loads(test.read_text().splitlines()[0])
    ask = tmp_path / "ask.jsonl"
    ask.write_text(json.dumps({"image": first["image"], "phrase": first["phrase"]}) + "\n")
    predicted = run_cli("predict", str(out), "--input", str(ask), "--json")
    assert predicted.returncode == 0, predicted.stderr
    x, y, w, h = json.loads(predicted.stdout)["box"]
    assert 0 <= x and 0 <= y and 0 < w <= 64 and 0 < h <= 64


def test_a_box_outside_its_image_is_one_line_and_nothing_is_written(
        grounding_data: tuple[Path, Path], tmp_path: Path) -> None:
    train, _ = grounding_data
    records = [json.loads(line) for line in train.read_text().splitlines()[:20]]
    out = tmp_path / "model"
    data = tmp_path / "bad.jsonl"
    records[7]["box"] = [10, 10, 0, 5]  # refused before training starts
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = run_cli("vision", "ground", "train", "--data", str(data), "--out", str(out),
                     "--set", "ablation=false")
    assert result.returncode == 2 and "record 8: box [10, 10, 0, 5] has no area" in \
        result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    records[7]["box"] = [60, 60, 30, 30]  # refused as its batch is made, naming its image
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = run_cli("vision", "ground", "train", "--data", str(data), "--out", str(out),
                     "--set", "ablation=false", "--json")
    assert result.returncode == 2 and "is not a box inside its 64x64 image" in result.stderr
    assert Path(records[7]["image"]).name in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
