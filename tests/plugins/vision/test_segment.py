"""vision.segment as a user meets it: a small segmenter trained through the CLI on the
object scenes' masks, masks written at each image's own size, overlays drawn, COCO polygons
and RLE read, bad masks refused in one line with nothing written, ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.testing import run_cli

pytest.importorskip("pycocotools")

CLASSES = ["background", "circle", "square", "triangle"]


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    from polymodal_vision.object_scenes import generate

    root = tmp_path_factory.mktemp("segment")
    train = generate(root / "train", 600, size=64, seed=21)["objects"]
    test = generate(root / "test", 60, size=64, seed=22)["objects"]
    out = root / "model"
    result = run_cli("vision", "segment", "train", "--data", str(train), "--test", str(test),
                     "--out", str(out), "--json", "--set", "train.epochs=4",
                     "--set", "validation=0")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)["metrics"], root


def test_a_small_segmenter_labels_most_pixels_of_every_class(
        segmenter: tuple[Path, dict, Path]) -> None:
    _, metrics, _ = segmenter
    test = metrics["test"]
    assert test["n"] == 60 and list(test["iou_per_class"]) == CLASSES
    assert test["pixel_accuracy"] > 0.9
    assert min(test["iou_per_class"].values()) > 0.3 and test["miou"] > 0.5
    blobs = metrics["baselines"]["colour threshold"]
    assert 0 < blobs["miou"] < 1


def test_masks_come_back_at_the_image_size_and_overlays_are_drawn(
        segmenter: tuple[Path, dict, Path], tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from polymodal_vision.object_scenes import draw_objects
    from polymodal_vision.scenes import Shape

    model, _, _ = segmenter
    image, truth = draw_objects([Shape("square", "red", "large", 20, 22, 10)], 64,
                                (240, 240, 240))
    image.resize((96, 96), Image.Resampling.NEAREST).save(tmp_path / "big.png")
    records = tmp_path / "in.jsonl"
    records.write_text(json.dumps({"image": str(tmp_path / "big.png")}) + "\n")
    masks, drawn = tmp_path / "masks", tmp_path / "drawn"
    result = run_cli("predict", str(model), "--input", str(records), "--out", str(masks),
                     "--draw", str(drawn), "--json")
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    mask = np.asarray(Image.open(line["mask"]))
    assert mask.shape == (96, 96) and set(np.unique(mask)) <= {0, 1, 2, 3}
    expected = np.asarray(truth.resize((96, 96), Image.Resampling.NEAREST))
    square = expected == 2
    assert (mask[square] == 2).mean() > 0.8 and (mask[~square] == 0).mean() > 0.95
    assert set(line["area"]) >= {"background", "square"}
    assert Image.open(line["drawn"]).size == (96, 96)
    plain = run_cli("predict", str(model), "--input", str(records), "--json")
    assert "mask_png_base64" in json.loads(plain.stdout)


def test_coco_polygons_and_rle_become_class_masks(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image
    from pycocotools import mask as coco_mask

    from polymodal_vision.segmentation_data import mask_array, read_segmentation_data

    Image.new("RGB", (20, 10), (255, 255, 255)).save(tmp_path / "a.png")
    circle = np.zeros((10, 20), dtype=np.uint8, order="F")
    circle[2:5, 12:16] = 1
    rle = coco_mask.encode(circle)
    rle["counts"] = rle["counts"].decode()
    document = {
        "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 2, 4, 4],
             "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [12, 2, 4, 3],
             "segmentation": rle}],
        "categories": [{"id": 2, "name": "circle"}, {"id": 3, "name": "square"}]}
    (tmp_path / "coco.json").write_text(json.dumps(document))
    record = read_segmentation_data(tmp_path / "coco.json")[0]
    mask = mask_array(record, CLASSES, (20, 10), "record 1")
    assert (mask[2:6, 2:6] == 2).all() and (mask[2:5, 12:16] == 1).all()
    assert (mask == 0).sum() == 200 - 16 - 12


def test_a_mask_of_another_size_is_refused_in_one_line(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    Image.new("L", (16, 16)).save(tmp_path / "small.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "rgb.png")
    for mask, message in (("small.png", "mask is 16x16, its image 32x32"),
                          ("rgb.png", "mask mode RGB")):
        data = tmp_path / "data.jsonl"
        data.write_text(json.dumps({"image": "a.png", "mask": mask}) + "\n")
        out = tmp_path / "model"
        result = run_cli("vision", "segment", "train", "--data", str(data), "--out", str(out))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_the_segmenter_exports_to_onnx_with_its_parity_check(
        segmenter: tuple[Path, dict, Path], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    model, _, _ = segmenter
    out = tmp_path / "segmenter.onnx"
    result = run_cli("export", str(model), "--format", "onnx", "--out", str(out))
    assert result.returncode == 0, result.stderr
    sidecar = json.loads(Path(f"{out}.json").read_text())
    assert sidecar["classes"] == CLASSES and sidecar["outputs"] == ["logits"]
    assert sidecar["verified_max_abs_diff"] < 1e-3
