"""Synthetic object scenes: the embedded data of detection (and of the scenarios that need
every object's box and mask). 1-6 objects, each one of 3 shapes x 4 colours x 2 sizes
(repeats allowed), placed at random; objects may overlap, but never so much that one hides
most of another (box IoU at most ``MAX_OVERLAP``), so each stays recognisable. Later
objects are drawn over earlier ones; a box is the whole object's extent (``[x, y, w, h]``
in pixels, COCO's convention), its label the shape kind (colour is not a class).

Written as PNG images, a class-index mask PNG per image (0 background, 1 + the shape's
index in ``SHAPES``), ``objects.jsonl`` (``{image, boxes, labels, mask}``) and the same set
as a COCO JSON file (``coco.json``, file names relative to it); deterministic for a seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from polymodal_vision.scenes import COLORS, SHAPES, SIZES, Shape

MAX_OBJECTS = 6
# The largest box IoU two objects of one scene may have.
MAX_OVERLAP = 0.3
RADIUS = {"small": 0.09, "large": 0.16}  # of the image side


def box_of(shape: Shape) -> list[float]:
    """The object's extent as ``[x, y, w, h]`` (what PIL fills: both ends inclusive)."""
    r = shape.radius
    return [round(shape.x - r, 2), round(shape.y - r, 2), round(2 * r + 1, 2),
            round(2 * r + 1, 2)]


def box_iou(a: list[float], b: list[float]) -> float:
    """IoU of two ``[x, y, w, h]`` boxes."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def place_objects(rng: random.Random, count: int, size: int) -> list[Shape]:
    """``count`` objects inside a ``size`` px square, overlapping at most ``MAX_OVERLAP``."""
    shapes: list[Shape] = []
    while len(shapes) < count:
        for _ in range(200):
            label = rng.choice(SIZES)
            radius = size * RADIUS[label]
            x = rng.uniform(radius, size - radius - 2)
            y = rng.uniform(radius, size - radius - 2)
            candidate = Shape(rng.choice(SHAPES), rng.choice(list(COLORS)), label, x, y,
                              radius)
            # Overlap is bounded and no object's centre lies on another: a viewer (or a
            # detector) can still tell each object apart.
            if all(box_iou(box_of(candidate), box_of(s)) <= MAX_OVERLAP
                   and max(abs(x - s.x), abs(y - s.y)) > 0.6 * max(radius, s.radius)
                   for s in shapes):
                shapes.append(candidate)
                break
        else:
            shapes = []  # a crowded start: place them all again
    return shapes


def draw_objects(shapes: list[Shape], size: int, background: tuple[int, int, int]
                 ) -> tuple[Any, Any]:
    """(RGB image, class-index mask) of the objects, later ones over earlier ones."""
    from PIL import Image, ImageDraw

    from polymodal_vision.scenes import draw, draw_shape

    image = draw(shapes, size, background)
    mask = Image.new("L", (size, size), 0)
    pen = ImageDraw.Draw(mask)
    for s in shapes:
        draw_shape(pen, s, 1 + SHAPES.index(s.kind))
    return image, mask


def coco_document(records: list[dict[str, Any]], root: Path, size: int) -> dict[str, Any]:
    """The records as a COCO detection file whose ``file_name``s are relative to ``root``."""
    categories = [{"id": i + 1, "name": kind} for i, kind in enumerate(SHAPES)]
    ids = {kind: i + 1 for i, kind in enumerate(SHAPES)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        images.append({"id": index + 1, "width": size, "height": size,
                       "file_name": str(Path(record["image"]).relative_to(root))})
        for box, label in zip(record["boxes"], record["labels"], strict=True):
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1,
                                "category_id": ids[label], "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": categories}


def generate(out_dir: str | Path, count: int, *, size: int = 64, seed: int = 0
             ) -> dict[str, Path]:
    """``count`` scenes into ``out_dir``: images, masks, ``objects.jsonl``, ``coco.json``."""
    out = Path(out_dir).resolve()
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    records = []
    for index in range(count):
        shapes = place_objects(rng, rng.randint(1, MAX_OBJECTS), size)
        shade = rng.randint(225, 250)
        image, mask = draw_objects(shapes, size, (shade, shade, shade))
        path, mask_path = (out / "images" / f"objects-{index:05d}.png",
                           out / "masks" / f"objects-{index:05d}.png")
        image.save(path)
        mask.save(mask_path)
        records.append({"image": str(path), "boxes": [box_of(s) for s in shapes],
                        "labels": [s.kind for s in shapes], "mask": str(mask_path),
                        "colors": [s.color for s in shapes],
                        "sizes": [s.size for s in shapes]})
    files = {"objects": out / "objects.jsonl", "coco": out / "coco.json"}
    texts = {"objects": "".join(json.dumps(r) + "\n" for r in records),
             "coco": json.dumps(coco_document(records, out, size))}
    for key, path in files.items():  # each whole or absent
        partial = path.with_suffix(".partial")
        partial.write_text(texts[key])
        partial.replace(path)
    return files
