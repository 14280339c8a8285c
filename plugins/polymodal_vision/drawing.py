"""Predictions drawn over their image (``polymodal predict --draw DIR``): boxes with their
label and score, in one colour per class name."""

from __future__ import annotations

from typing import Any

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (128, 128, 0)]


def colour_of(label: str) -> tuple[int, int, int]:
    """A stable colour per label (the same class is the same colour in every image)."""
    import zlib

    return PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]


def draw_boxes(image: Any, objects: list[dict[str, Any]], scale: int = 4) -> Any:
    """A copy of ``image`` (enlarged ``scale`` times when small, so labels stay readable)
    with each object's ``box`` [x, y, w, h] outlined and captioned."""
    from PIL import Image, ImageDraw

    factor = scale if max(image.size) < 256 else 1
    canvas = image.convert("RGB").resize((image.width * factor, image.height * factor),
                                         Image.Resampling.NEAREST)
    pen = ImageDraw.Draw(canvas)
    for obj in objects:
        x, y, w, h = (v * factor for v in obj["box"])
        colour = colour_of(str(obj["label"]))
        pen.rectangle((x, y, x + w, y + h), outline=colour, width=2)
        caption = f"{obj['label']} {obj['score']:.2f}" if "score" in obj else str(obj["label"])
        left, top, right, bottom = pen.textbbox((x, y), caption)
        lift = bottom - top + 2
        pen.rectangle((x, y - lift, x + right - left + 4, y), fill=colour)
        pen.text((x + 2, y - lift), caption, fill=(255, 255, 255))
    return canvas
