"""vision.detect as a user meets it: a small detector trained through the CLI on object
scenes beats the colour-blob baseline, predicts boxes in the input's pixels, draws them,
reads COCO files (categories by name, scenes from another renderer), serves uploads and
exports its head to ONNX."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from polymodal.testing import run_cli

pytest.importorskip("pycocotools")

TRAIN_SCENES = 700


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    from polymodal_vision.object_scenes import generate

    root = tmp_path_factory.mktemp("detect")
    train = generate(root / "train", TRAIN_SCENES, size=64, seed=11)["objects"]
    test = generate(root / "test", 120, size=64, seed=12)["coco"]
    out = root / "model"
    result = run_cli("vision", "detect", "train", "--data", str(train), "--test", str(test),
                     "--out", str(out), "--json", "--set", "train.epochs=8",
                     "--set", "validation=0")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)["metrics"], root


def test_a_small_detector_learns_past_the_colour_blob_baseline(
        detector: tuple[Path, dict, Path]) -> None:
    _, metrics, _ = detector
    test, blobs = metrics["test"], metrics["baselines"]["colour blobs"]
    assert metrics["classes"] == ["circle", "square", "triangle"]
    assert test["n"] == 120 and set(test["ap_per_class"]) == {"circle", "square", "triangle"}
    assert test["map_50"] > blobs["map_50"] and test["map_50"] > 0.7
    assert 0 < test["map"] <= test["map_50"]


def test_predict_gives_boxes_in_the_input_pixels_and_draws_them(
        detector: tuple[Path, dict, Path], tmp_path: Path) -> None:
    """An image twice the training size gets boxes twice as large, in its own pixels."""
    from PIL import Image

    from polymodal_vision.object_scenes import draw_objects
    from polymodal_vision.scenes import Shape

    model, _, _ = detector
    image, _ = draw_objects([Shape("square", "red", "large", 20, 22, 10),
                             Shape("circle", "blue", "large", 45, 42, 10)], 64,
                            (240, 240, 240))
    image.save(tmp_path / "small.png")
    image.resize((128, 128), Image.Resampling.NEAREST).save(tmp_path / "large.png")
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({"image": str(tmp_path / n)}) + "\n"
                               for n in ("small.png", "large.png")))
    drawn = tmp_path / "drawn"
    result = run_cli("predict", str(model), "--input", str(records), "--draw", str(drawn),
                     "--json")
    assert result.returncode == 0, result.stderr
    small, large = (json.loads(line) for line in result.stdout.splitlines())
    best = {o["label"]: o for o in sorted(small["objects"], key=lambda o: o["score"])}
    assert set(best) >= {"square", "circle"}
    square = best["square"]["box"]
    assert square == pytest.approx([10, 12, 21, 21], abs=2.5)
    twice = max((o for o in large["objects"] if o["label"] == "square"),
                key=lambda o: o["score"])["box"]
    assert twice == pytest.approx([2 * v for v in square], abs=3)
    assert Path(small["drawn"]).is_file() and Image.open(large["drawn"]).size == (512, 512)
    refused = run_cli("predict", str(model), "--input", str(records), "--draw", str(drawn))
    assert refused.returncode == 2 and "--draw" in refused.stderr  # not over a directory


def _other_renderer(directory: Path, count: int, seed: int) -> Path:
    """Scenes drawn another way: 96 px, a blue-grey background, sizes between and beyond
    the embedded two, anti-aliased by drawing at 4x and shrinking; as COCO JSON with other
    category ids (matched by name)."""
    from PIL import Image, ImageDraw

    from polymodal_vision.object_scenes import box_iou
    from polymodal_vision.scenes import COLORS

    rng = random.Random(seed)
    (directory / "img").mkdir(parents=True)
    ids = {"triangle": 5, "circle": 6, "square": 7}
    images, annotations = [], []
    for index in range(count):
        big = Image.new("RGB", (384, 384), (205, 212, 228))
        pen = ImageDraw.Draw(big)
        boxes: list[list[float]] = []
        for _ in range(rng.randint(1, 4)):
            for _ in range(100):
                r = rng.uniform(7, 17)
                x, y = rng.uniform(r, 96 - r - 1), rng.uniform(r, 96 - r - 1)
                box = [x - r, y - r, 2 * r, 2 * r]
                if all(box_iou(box, b) < 0.1 for b in boxes):
                    break
            kind, colour = rng.choice(list(ids)), COLORS[rng.choice(list(COLORS))]
            corners = [4 * v for v in (x - r, y - r, x + r, y + r)]
            if kind == "circle":
                pen.ellipse(corners, fill=colour)
            elif kind == "square":
                pen.rectangle(corners, fill=colour)
            else:
                pen.polygon([(4 * x, 4 * (y - r)), (4 * (x - r), 4 * (y + r)),
                             (4 * (x + r), 4 * (y + r))], fill=colour)
            boxes.append(box)
            annotations.append({"id": len(annotations) + 1, "image_id": index,
                                "category_id": ids[kind], "bbox": [round(v, 2) for v in box]})
        big.resize((96, 96), Image.Resampling.LANCZOS).save(directory / "img" / f"{index}.png")
        images.append({"id": index, "file_name": f"img/{index}.png", "width": 96,
                       "height": 96})
    path = directory / "coco.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [
        {"id": v, "name": k} for k, v in ids.items()]}))
    return path


def test_scenes_from_another_renderer_read_from_coco_are_detected(
        detector: tuple[Path, dict, Path], tmp_path: Path) -> None:
    model, metrics, _ = detector
    coco = _other_renderer(tmp_path, 40, seed=5)
    result = run_cli("evaluate", str(model), "--data", str(coco), "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["n"] == 40 and scores["map_50"] > 0.5
    document = json.loads(coco.read_text())
    document["categories"].append({"id": 9, "name": "star"})
    document["annotations"][0]["category_id"] = 9
    coco.write_text(json.dumps(document))
    refused = run_cli("evaluate", str(model), "--data", str(coco))
    assert refused.returncode == 2 and "unknown label 'star'" in refused.stderr


def test_a_served_detector_takes_uploads_and_survives_broken_ones(
        detector: tuple[Path, dict, Path]) -> None:
    from fastapi.testclient import TestClient

    from polymodal.serving.app import ServeSettings, create_app

    model, _, root = detector
    png = next((root / "test" / "images").glob("*.png")).read_bytes()
    with TestClient(create_app([model], ServeSettings(), device="cpu")) as http:
        url = f"/v1/models/{model.name}/predict"
        answer = http.post(url, files={"image": ("scene.png", png, "image/png")})
        assert answer.status_code == 200, answer.text
        objects = answer.json()["predictions"][0]["objects"]
        assert objects and {"label", "score", "box"} <= set(objects[0])
        broken = http.post(url, files={"image": ("scene.png", png[:100], "image/png")})
        assert 400 <= broken.status_code < 500 and "image" in broken.text
        assert http.post(url, files={"image": ("scene.png", png, "image/png")}
                         ).status_code == 200


def test_the_detection_head_exports_to_onnx_with_its_parity_check(
        detector: tuple[Path, dict, Path], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    model, _, _ = detector
    out = tmp_path / "detector.onnx"
    result = run_cli("export", str(model), "--format", "onnx", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    sidecar = json.loads(Path(f"{out}.json").read_text())
    assert sidecar["classes"] == ["circle", "square", "triangle"] and sidecar["stride"] == 8
    assert sidecar["outputs"] == ["cls_logits", "bbox_regression", "bbox_ctrness"]
    assert sidecar["verified_max_abs_diff"] < 1e-3


def test_draw_is_refused_for_a_model_with_nothing_to_draw(digits_model: Path,
                                                          tmp_path: Path) -> None:
    from polymodal_vision.datasets import digits

    records = tmp_path / "in.jsonl"
    records.write_text(json.dumps({"image": digits()[0]["image"]}) + "\n")
    result = run_cli("predict", str(digits_model), "--input", str(records), "--draw",
                     str(tmp_path / "drawn"))
    assert result.returncode == 2 and "has nothing to draw" in result.stderr
    assert not (tmp_path / "drawn").exists()
