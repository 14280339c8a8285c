"""vision.detect_faces: pretrained MTCNN written as a model directory (safetensors, nothing
unpickled on load), finding the astronaut's face where it was checked by eye and the face
crops of lfw_subset, beside OpenCV's Haar cascade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.testing import run_cli

pytest.importorskip("facenet_pytorch")


@pytest.fixture(scope="module")
def face_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("faces") / "models"
    result = run_cli("demo", "vision.detect_faces", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out / "vision.detect_faces", json.loads(result.stdout)["vision.detect_faces"]


def test_mtcnn_finds_the_faces_and_the_haar_cascade_is_beside_it(
        face_model: tuple[Path, dict]) -> None:
    model, summary = face_model
    metrics = summary["metrics"]
    assert metrics["images_with_faces"] == 101 and metrics["images_without"] == 100
    assert metrics["found"] >= 0.95 and metrics["false_alarm_rate"] <= 0.05
    assert metrics["box_recall@0.5"] == 1.0  # the astronaut's face, checked by eye
    haar = summary["baselines"]["Haar cascade (OpenCV)"]
    assert haar["found"] < metrics["found"]
    assert (model / "model.safetensors").is_file()
    assert not list(model.glob("*.pt"))


def test_predict_returns_face_boxes_and_draws_them(face_model: tuple[Path, dict],
                                                   tmp_path: Path) -> None:
    from PIL import Image

    from polymodal_vision.face_detection_scenario import ASTRONAUT_FACE, face_demo
    from polymodal_vision.object_scenes import box_iou

    model, _ = face_model
    astronaut = face_demo().test[0]["image"]
    Image.new("RGB", (120, 90), (200, 180, 160)).save(tmp_path / "wall.png")
    records = tmp_path / "in.jsonl"
    records.write_text(json.dumps({"image": astronaut}) + "\n" +
                       json.dumps({"image": str(tmp_path / "wall.png")}) + "\n")
    result = run_cli("predict", str(model), "--input", str(records), "--draw",
                     str(tmp_path / "drawn"), "--json")
    assert result.returncode == 0, result.stderr
    face, wall = (json.loads(line) for line in result.stdout.splitlines())
    assert [o["label"] for o in face["objects"]] == ["face"]
    assert box_iou(face["objects"][0]["box"], ASTRONAUT_FACE) >= 0.5
    assert wall["objects"] == []
    assert Image.open(face["drawn"]).size == (512, 512)


def test_it_trains_on_nothing_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"image": "a.png", "faces": 1}) + "\n")
    result = run_cli("vision", "detect_faces", "train", "--data", str(data), "--out",
                     str(tmp_path / "m"))
    assert result.returncode == 2 and "trains on nothing" in result.stderr
    assert not (tmp_path / "m").exists()
