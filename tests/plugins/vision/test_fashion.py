"""vision.fashion: Fashion-MNIST from Debian's dataset-fashion-mnist, read from its IDX
files, learns the ten articles (quick here; the full default reaches >= 0.92, slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal_vision.datasets import FASHION_CLASSES, FASHION_MNIST
from tests.conftest import run_cli

if not FASHION_MNIST.is_dir():
    pytest.skip("dataset-fashion-mnist is not installed", allow_module_level=True)


def test_the_idx_files_read_as_the_ten_articles_in_equal_numbers() -> None:
    from collections import Counter

    from polymodal_vision.datasets import fashion_mnist

    test = fashion_mnist("test")
    assert len(test) == 10_000 and len(fashion_mnist("train")) == 60_000
    assert Counter(r["label"] for r in test) == {name: 1000 for name in FASHION_CLASSES}
    from PIL import Image

    with Image.open(test[0]["image"]) as image:
        assert image.size == (28, 28) and image.mode == "L"


def test_a_quick_fashion_model_learns_the_articles(tmp_path: Path) -> None:
    """1,000 training images, 3 epochs: far above chance (0.10) on 1,000 test images."""
    result = run_cli("vision", "fashion", "train", "--quick", "--out", str(tmp_path / "m"),
                     "--set", "train.epochs=3", "--json")
    assert result.returncode == 0, result.stderr
    test = json.loads(result.stdout)["metrics"]["test"]
    assert test["n"] == 1000 and test["accuracy"] >= 0.65


@pytest.mark.slow
def test_the_default_fashion_model_reaches_its_accuracy(tmp_path: Path) -> None:
    """The default run (60,000 images, 4 epochs, about 10 minutes on 2 cores): >= 0.92 on
    the 10,000 test images."""
    result = run_cli("vision", "fashion", "train", "--out", str(tmp_path / "m"), "--json",
                     timeout=3600)
    assert result.returncode == 0, result.stderr
    test = json.loads(result.stdout)["metrics"]["test"]
    assert test["n"] == 10_000 and test["accuracy"] >= 0.92
