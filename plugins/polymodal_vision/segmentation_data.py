"""Segmentation data: records ``{"image", "mask"}`` (a class-index PNG of the image's size)
or, from a COCO file, ``{"image", "segments": [{"label", "segmentation"}]}`` with polygon
or RLE segmentations rasterised by pycocotools. Every refusal is one line naming the record
or annotation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polymodal.plugin import DataError, Record

BACKGROUND = "background"


def read_segmentation_data(path: str | Path) -> list[Record]:
    """A COCO JSON file with ``segmentation``s, or records (JSONL, CSV) of image + mask."""
    from polymodal.plugin import read_records
    from polymodal_vision.detection_data import coco_document

    path = Path(path)
    document = coco_document(path)
    if document is not None:
        return read_coco_segments(path, document)
    records = read_records(path)
    for record in records:
        for key in ("image", "mask"):
            value = record.get(key)
            if isinstance(value, str) and not Path(value).is_absolute():
                record[key] = str((path.parent / value).resolve())
    return records


def read_coco_segments(path: Path, document: dict[str, Any]) -> list[Record]:
    """One record per image: its annotations' segmentations (polygons or RLE) by category
    name, drawn in file order (a later annotation covers an earlier one)."""
    from polymodal_vision.detection_data import read_coco

    boxes_by_image = read_coco(path, document)  # checks files, category ids and boxes
    names = {c["id"]: str(c["name"]) for c in document.get("categories") or []}
    by_id = {image["id"]: i for i, image in enumerate(document["images"])}
    records = [{"image": r["image"], "segments": [], "width": r.get("width"),
                "height": r.get("height")} for r in boxes_by_image]
    for annotation in document["annotations"]:
        if annotation.get("iscrowd"):
            continue
        segmentation = annotation.get("segmentation")
        if not segmentation:
            raise DataError(f"{path}: annotation {annotation.get('id', '?')}: no "
                            "segmentation (polygons or RLE)")
        records[by_id[annotation["image_id"]]]["segments"].append(
            {"label": names[annotation["category_id"]], "segmentation": segmentation,
             "annotation": annotation.get("id", "?")})
    return records


def mask_array(record: Record, classes: list[str], size: tuple[int, int], where: str
               ) -> Any:
    """The record's class-index mask as a uint8 array of the image's ``size`` (width,
    height): its mask PNG, or its COCO segments rasterised (pycocotools)."""
    import numpy as np

    width, height = size
    if record.get("mask") is not None:
        mask = _open_mask(record["mask"], where)
        if (mask.width, mask.height) != (width, height):
            raise DataError(f"{where}: mask is {mask.width}x{mask.height}, its image "
                            f"{width}x{height}")
        array = np.asarray(mask, dtype=np.uint8)
        if array.max(initial=0) >= len(classes):
            raise DataError(f"{where}: mask value {int(array.max())} has no class (classes: "
                            f"{', '.join(classes)}; set them with --set classes=[...])")
        return array
    if "segments" not in record:
        raise DataError(f"{where}: needs \"mask\" (a class-index PNG) or COCO segments")
    from pycocotools import mask as coco_mask

    array = np.zeros((height, width), dtype=np.uint8)
    index = {name: i for i, name in enumerate(classes)}
    for segment in record["segments"]:
        if segment["label"] not in index:
            raise DataError(f"{where}: unknown label {segment['label']!r} (classes: "
                            f"{', '.join(classes)})")
        shape = segment["segmentation"]
        try:
            if isinstance(shape, list):  # polygons
                rle = coco_mask.merge(coco_mask.frPyObjects(shape, height, width))
            elif isinstance(shape.get("counts"), list):  # uncompressed RLE
                rle = coco_mask.frPyObjects(shape, height, width)
            else:
                rle = shape
            drawn = coco_mask.decode(rle).astype(bool)
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            raise DataError(f"{where}: annotation {segment.get('annotation', '?')}: not a "
                            f"polygon list or RLE ({exc})") from None
        if drawn.shape != (height, width):
            raise DataError(f"{where}: annotation {segment.get('annotation', '?')}: its RLE "
                            f"is {drawn.shape[1]}x{drawn.shape[0]}, the image {width}x{height}")
        array[drawn] = index[segment["label"]]
    return array


def _open_mask(value: Any, where: str) -> Any:
    """A mask PNG opened as class indices (mode L or P; RGB masks are refused: their
    colours would need a palette to mean classes)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(value, bytes | bytearray):
            mask = Image.open(io.BytesIO(bytes(value)))
        else:
            if not Path(value).is_file():
                raise DataError(f"{where}: mask file {value} not found")
            mask = Image.open(value)
        mask.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{where}: mask is not a readable image ({exc})") from None
    if mask.mode not in ("L", "P", "1"):
        raise DataError(f"{where}: mask mode {mask.mode}: save class indices as an 8-bit "
                        "grey or palette PNG")
    return mask


def check_segmentation_records(records: list[Record], classes: list[str],
                               what: str = "record") -> None:
    """Open every image and mask before anything trains: a bad file, a mask of another
    size, an unknown class is named now, not mid-epoch."""
    from polymodal_vision.images import open_image

    for index, record in enumerate(records):
        where = f"{what} {index + 1}"
        if record.get("image") is None:
            raise DataError(f"{where}: needs \"image\"")
        image = open_image(record["image"])
        mask_array(record, classes, image.size, where)
