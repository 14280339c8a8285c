"""Detection data: records ``{"image", "boxes": [[x, y, w, h], ...], "labels": [...]}``
(boxes in pixels of the image file, COCO's convention), read from a COCO JSON file or from
JSONL/CSV records, and checked before anything trains or is written: each refusal is one
line naming the record (or the COCO annotation) and what is wrong with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from polymodal.plugin import DataError, Record

# How far (pixels) a box may reach past the image's edge before it is refused: annotation
# tools round outward, so COCO boxes often end a fraction of a pixel outside.
EDGE_TOLERANCE = 1.0


def coco_document(path: Path) -> dict[str, Any] | None:
    """The COCO document ``path`` holds (a JSON object with ``images`` and
    ``annotations``), or None for any other file."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(document, dict) and "images" in document and "annotations" in document:
        return document
    return None


def read_detection_data(path: str | Path) -> list[Record]:
    """A COCO JSON file, or any record file the core reads (JSONL, JSON array, CSV)."""
    from polymodal.plugin import read_records

    path = Path(path)
    document = coco_document(path)
    if document is not None:
        return read_coco(path, document)
    records = read_records(path)
    for index, record in enumerate(records):
        where = f"{path}: record {index + 1}"
        if isinstance(record.get("image"), str) and not Path(record["image"]).is_absolute():
            record["image"] = str((path.parent / record["image"]).resolve())
        if "boxes" in record or "labels" in record:
            check_targets(record, where)
    return records


def read_coco(path: Path, document: dict[str, Any] | None = None) -> list[Record]:
    """COCO detection JSON -> one record per image (``file_name`` relative to the file),
    labels by category name. Crowd annotations (``iscrowd``) are left out, as COCO's own
    evaluation ignores them."""
    if document is None:
        document = json.loads(path.read_text(encoding="utf-8"))
    categories = {}
    for category in document.get("categories") or []:
        if not isinstance(category, dict) or "id" not in category or "name" not in category:
            raise DataError(f"{path}: every category needs an id and a name")
        categories[category["id"]] = str(category["name"])
    records: dict[Any, Record] = {}
    for image in document["images"]:
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DataError(f"{path}: every image needs an id and a file_name")
        file = (path.parent / str(image["file_name"])).resolve()
        if not file.is_file():
            raise DataError(f"{path}: image {image['id']}: file {image['file_name']!r} not "
                            f"found (file_name is read relative to {path.parent})")
        records[image["id"]] = {"image": str(file), "boxes": [], "labels": [],
                                "width": image.get("width"), "height": image.get("height")}
    for annotation in document["annotations"]:
        where = f"{path}: annotation {annotation.get('id', '?')}"
        if annotation.get("iscrowd"):
            continue
        if annotation.get("image_id") not in records:
            raise DataError(f"{where}: unknown image_id {annotation.get('image_id')!r}")
        if annotation.get("category_id") not in categories:
            raise DataError(f"{where}: unknown category_id {annotation.get('category_id')!r}"
                            f" (categories: {sorted(categories)})")
        record = records[annotation["image_id"]]
        record["boxes"].append(annotation.get("bbox"))
        record["labels"].append(categories[annotation["category_id"]])
        try:
            check_box(annotation.get("bbox"), record.get("width"), record.get("height"))
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from None
    return list(records.values())


def check_box(box: Any, width: float | None, height: float | None) -> None:
    """``ValueError`` saying what is wrong with an ``[x, y, w, h]`` box in a ``width`` x
    ``height`` image (sizes unknown: only the shape and the area are checked)."""
    if (not isinstance(box, list | tuple) or len(box) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)):
        raise ValueError(f"box {box!r} is not [x, y, w, h] (four numbers)")
    x, y, w, h = (float(v) for v in box)
    if not all(v == v and abs(v) != float("inf") for v in (x, y, w, h)):
        raise ValueError(f"box {list(box)} holds a NaN or an infinity")
    if w <= 0 or h <= 0:
        raise ValueError(f"box {list(box)} has no area (width and height must be > 0)")
    if width is not None and height is not None and (
            x < -EDGE_TOLERANCE or y < -EDGE_TOLERANCE
            or x + w > width + EDGE_TOLERANCE or y + h > height + EDGE_TOLERANCE):
        raise ValueError(f"box {list(box)} lies outside the {width}x{height} image")


def check_targets(record: Record, where: str, size: tuple[int, int] | None = None) -> None:
    """The record's ``boxes`` and ``labels``: lists of one length, boxes valid in an image
    of ``size`` (width, height) where it is known."""
    boxes, labels = record.get("boxes"), record.get("labels")
    if not isinstance(boxes, list) or not isinstance(labels, list):
        raise DataError(f"{where}: needs \"boxes\" and \"labels\" lists")
    if len(boxes) != len(labels):
        raise DataError(f"{where}: {len(boxes)} boxes but {len(labels)} labels")
    width, height = size if size else (record.get("width"), record.get("height"))
    for box in boxes:
        try:
            check_box(box, width, height)
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from None
    for label in labels:
        if not isinstance(label, str) or not label:
            raise DataError(f"{where}: label {label!r} is not a class name")


def check_records(records: list[Record], classes: list[str] | None = None,
                  what: str = "record") -> list[tuple[int, int]]:
    """Open every image (a bad file is named before anything trains) and check its targets
    against its real size and, given ``classes``, the labels against them. Returns each
    image's (width, height)."""
    from polymodal_vision.images import open_image

    sizes = []
    for index, record in enumerate(records):
        where = f"{what} {index + 1}"
        if record.get("image") is None:
            raise DataError(f"{where}: needs \"image\"")
        image = open_image(record["image"])
        sizes.append(image.size)
        check_targets(record, f"{where} ({_short(record['image'])})", image.size)
        if classes is not None:
            unknown = sorted(set(record["labels"]) - set(classes))
            if unknown:
                raise DataError(f"{where}: unknown label {unknown[0]!r} (the model's classes:"
                                f" {', '.join(classes)})")
    return sizes


def _short(value: Any) -> str:
    return Path(value).name if isinstance(value, str) else "uploaded image"
