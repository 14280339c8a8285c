"""Bad image files get a one-line error naming the file, exit 2, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


def write_bad(kind: str, path: Path) -> Path:
    from PIL import Image

    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        Image.new("RGB", (64, 64), (200, 30, 30)).save(path.with_suffix(".full.jpg"))
        data = path.with_suffix(".full.jpg").read_bytes()
        path.with_suffix(".full.jpg").unlink()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("this is not an image\n")
    elif kind == "cmyk":
        Image.new("CMYK", (16, 16)).save(path, format="JPEG")
    elif kind == "16-bit":
        Image.new("I;16", (16, 16)).save(path, format="PNG")
    elif kind == "huge":
        Image.new("1", (20000, 20000)).save(path, format="PNG")
    return path


CASES = [("empty", "a.png", "empty file (0 bytes)"),
         ("truncated", "b.jpg", "truncated or corrupt image"),
         ("text", "c.png", "not an image in an accepted format"),
         ("cmyk", "d.jpg", "unsupported image mode CMYK"),
         ("16-bit", "e.png", "unsupported image mode I;16"),
         ("huge", "f.png", "20000x20000 pixels is over the limit")]


@pytest.mark.parametrize("kind,name,message", CASES)
def test_bad_image_in_predict(digits_model: Path, tmp_path: Path, kind: str, name: str,
                              message: str) -> None:
    image = write_bad(kind, tmp_path / name)
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"image": str(image)}) + "\n")
    result = run_cli("predict", str(digits_model), "--input", str(records))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {image}: {message}" or (
        result.stderr.startswith(f"error: {image}: {message}")
        and len(result.stderr.strip().splitlines()) == 1), result.stderr


def test_bad_image_in_training_data_writes_nothing(tmp_path: Path) -> None:
    from polymodal_vision.datasets import digits

    rows = digits()[:40]
    bad = write_bad("truncated", tmp_path / "bad.jpg")
    rows[17] = {"image": str(bad), "label": "3"}
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_cli("vision", "classify", "train", "--data", str(data), "--out",
                     str(tmp_path / "model"), "--set", "train.epochs=1")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {bad}: truncated or corrupt image")
    assert not (tmp_path / "model").exists() and not (tmp_path / "model.partial").exists()
