"""Embedded image data, written once as PNG files under the polymodal cache directory
(``$POLYMODAL_CACHE``, default ``~/.cache/polymodal``): scikit-learn's digits, scikit-image's
faces (``lfw_subset``), and the synthetic scenes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from polymodal.plugin import Record, build_once, cache_dir, cached_records


def _save_gray(array: Any, path: Path, size: int) -> None:
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.asarray(array, dtype=np.uint8), mode="L")
    image.resize((size, size), Image.Resampling.BILINEAR).save(path)


def digits(size: int = 32) -> list[Record]:
    """The 1,797 8x8 digits of scikit-learn, upscaled to ``size`` pixels; label = digit."""

    def build(directory: Path) -> list[Record]:
        from sklearn.datasets import load_digits

        data = load_digits()
        records = []
        for index, (image, label) in enumerate(zip(data.images, data.target, strict=True)):
            path = directory / f"digit-{index:04d}.png"
            _save_gray(image * (255 / 16), path, size)
            records.append({"image": str(path.resolve()), "label": str(int(label))})
        return records

    return cached_records(cache_dir(f"digits-{size}"), build)


def faces(size: int = 32) -> list[Record]:
    """scikit-image ``lfw_subset``: 100 faces and 100 non-faces (25x25); label face/other."""

    def build(directory: Path) -> list[Record]:
        from skimage.data import lfw_subset

        images = lfw_subset()
        records = []
        for index, image in enumerate(images):
            path = directory / f"lfw-{index:03d}.png"
            _save_gray(image * 255, path, size)
            records.append({"image": str(path.resolve()),
                            "label": "face" if index < 100 else "other"})
        return records

    return cached_records(cache_dir(f"lfw-{size}"), build)


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
INSTALL_FASHION = "apt-get install dataset-fashion-mnist"


def _idx(path: Path) -> Any:
    """The array of an IDX file (gzip): big-endian dimensions, then unsigned bytes."""
    import gzip

    import numpy as np

    data = gzip.decompress(path.read_bytes())
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist(part: str) -> list[Record]:
    """Zalando's Fashion-MNIST (MIT) from Debian's dataset-fashion-mnist: ``part`` "train"
    (60,000 images) or "test" (10,000), 28x28 grey PNGs written once into the cache;
    label = the article's name."""
    from polymodal.plugin import DataError

    prefix = {"train": "train", "test": "t10k"}[part]
    images_file = FASHION_MNIST / f"{prefix}-images-idx3-ubyte.gz"
    if not images_file.is_file():
        raise DataError(f"Fashion-MNIST is not installed ({images_file}): {INSTALL_FASHION}")

    def build(directory: Path) -> list[Record]:
        from PIL import Image

        images = _idx(images_file)
        labels = _idx(FASHION_MNIST / f"{prefix}-labels-idx1-ubyte.gz")
        records = []
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            path = directory / f"{part}-{index:05d}.png"
            Image.fromarray(image, mode="L").save(path)
            records.append({"image": str(path.resolve()), "label": FASHION_CLASSES[label]})
        return records

    return cached_records(cache_dir(f"fashion-mnist-v1-{part}"), build)


def split(records: list[Record], test_fraction: float, seed: int = 0
          ) -> tuple[list[Record], list[Record]]:
    import random

    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    cut = int(len(order) * (1 - test_fraction))
    return [records[i] for i in order[:cut]], [records[i] for i in order[cut:]]


def scenes(kind: str, count: int, seed: int, size: int = 64, max_shapes: int = 3
           ) -> list[Record]:
    """Synthetic scene records (``kind``: captions or questions) of 1 to ``max_shapes``
    shapes, cached per seed/count."""
    from polymodal_vision.scenes import generate

    upto = "" if max_shapes == 3 else f"-upto{max_shapes}"
    directory = cache_dir(f"scenes-v4-{size}-{count}-{seed}{upto}")
    manifest = directory / f"{kind}.jsonl"
    build_once(directory, manifest, lambda: generate(directory, count, size=size, seed=seed,
                                                     max_shapes=max_shapes))
    return [json.loads(line) for line in manifest.read_text().splitlines()]
