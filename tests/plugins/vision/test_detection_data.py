"""Detection data as a user brings it: the embedded object scenes (boxes that fit what is
drawn), COCO JSON and JSONL readers, and every bad input refused in one line with nothing
written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.testing import run_cli


def test_object_scene_boxes_hold_exactly_what_is_drawn(tmp_path: Path) -> None:
    """Each box is its object's drawn extent: in one-object scenes the mask's non-zero
    pixels span the box to within a pixel, and the class in the mask is the label's."""
    import numpy as np
    from PIL import Image

    from polymodal_vision.object_scenes import SHAPES, generate

    rows = [json.loads(line) for line in
            generate(tmp_path, 60, size=64, seed=3)["objects"].read_text().splitlines()]
    counts = {len(r["labels"]) for r in rows}
    assert min(counts) >= 1 and max(counts) <= 6 and len(counts) >= 4
    single = [r for r in rows if len(r["labels"]) == 1]
    assert single
    for row in single:
        mask = np.asarray(Image.open(row["mask"]))
        ys, xs = np.nonzero(mask)
        x, y, w, h = row["boxes"][0]
        assert abs(xs.min() - x) <= 1 and abs(xs.max() + 1 - (x + w)) <= 1
        assert abs(ys.min() - y) <= 1 and abs(ys.max() + 1 - (y + h)) <= 1
        assert set(np.unique(mask)) == {0, 1 + SHAPES.index(row["labels"][0])}
    again = generate(tmp_path / "again", 60, size=64, seed=3)["objects"].read_text()
    assert [json.loads(line)["boxes"] for line in again.splitlines()] == [
        r["boxes"] for r in rows]


def test_the_coco_file_reads_back_as_the_same_records(tmp_path: Path) -> None:
    from polymodal_vision.detection_data import read_detection_data
    from polymodal_vision.object_scenes import generate

    files = generate(tmp_path, 20, size=64, seed=1)
    jsonl = [json.loads(line) for line in files["objects"].read_text().splitlines()]
    coco = read_detection_data(files["coco"])
    assert [r["image"] for r in coco] == [r["image"] for r in jsonl]
    assert [r["labels"] for r in coco] == [r["labels"] for r in jsonl]
    assert [r["boxes"] for r in coco] == [r["boxes"] for r in jsonl]


def _coco(tmp_path: Path, boxes: list[list[float]], category: int = 1,
          file_name: str = "a.png") -> Path:
    from PIL import Image

    Image.new("RGB", (40, 30), (240, 240, 240)).save(tmp_path / "a.png")
    document = {"images": [{"id": 7, "file_name": file_name, "width": 40, "height": 30}],
                "annotations": [{"id": i + 1, "image_id": 7, "category_id": category,
                                 "bbox": box} for i, box in enumerate(boxes)],
                "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(("boxes", "category", "file_name", "message"), [
    ([[30, 5, 20, 10]], 1, "a.png", "annotation 1: box [30, 5, 20, 10] lies outside the "
                                    "40x30 image"),
    ([[5, 5, 0, 10]], 1, "a.png", "annotation 1: box [5, 5, 0, 10] has no area"),
    ([[5, 5, 10, -3]], 1, "a.png", "has no area"),
    ([[5, 5, 10, 10]], 9, "a.png", "annotation 1: unknown category_id 9"),
    ([[5, 5, 10, 10]], 1, "gone.png", "image 7: file 'gone.png' not found"),
    ([[5, 5, 10]], 1, "a.png", "is not [x, y, w, h]"),
])
def test_bad_coco_input_is_one_line_and_nothing_is_written(
        tmp_path: Path, boxes: list[list[float]], category: int, file_name: str,
        message: str) -> None:
    data = _coco(tmp_path, boxes, category, file_name)
    out = tmp_path / "model"
    result = run_cli("vision", "detect", "train", "--data", str(data), "--out", str(out))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "model.partial").exists()


def test_bad_jsonl_records_name_the_record_and_file(tmp_path: Path) -> None:
    from PIL import Image

    Image.effect_noise((32, 32), 60).convert("RGB").save(tmp_path / "ok.png")
    whole = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "broken.png").write_bytes(whole[: len(whole) // 2])
    cases = [
        ({"image": "broken.png", "boxes": [[1, 1, 4, 4]], "labels": ["circle"]},
         "broken.png: truncated or corrupt image"),
        ({"image": "ok.png", "boxes": [[1, 1, 4, 4]], "labels": []},
         "record 1: 1 boxes but 0 labels"),
        ({"image": "ok.png", "boxes": [[-5, 1, 4, 4]], "labels": ["circle"]},
         "lies outside the 32x32 image"),
    ]
    for record, message in cases:
        data = tmp_path / "data.jsonl"
        data.write_text(json.dumps(record) + "\n")
        out = tmp_path / "model"
        result = run_cli("vision", "detect", "train", "--data", str(data), "--out", str(out))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_the_colour_blob_baseline_is_exact_on_separate_objects(tmp_path: Path) -> None:
    """Objects that touch nothing of their own colour are found with their box and shape."""
    from polymodal_vision.colour_baselines import colour_blobs
    from polymodal_vision.object_scenes import draw_objects
    from polymodal_vision.scenes import Shape

    shapes = [Shape("circle", "red", "large", 20, 20, 10), Shape("square", "blue", "small",
                                                                  50, 45, 6),
              Shape("triangle", "green", "large", 45, 15, 10)]
    image, _ = draw_objects(shapes, 64, (240, 240, 240))
    found = sorted(colour_blobs(image), key=lambda o: o["box"][0])
    assert [o["label"] for o in found] == ["circle", "triangle", "square"]
    assert found[0]["box"] == [10.0, 10.0, 21.0, 21.0]
