"""The trivial baselines of detection and segmentation: connected blobs of one colour
(pixels far from the background, grouped by colour and 8-connectivity), each labelled by how
much of its box it fills (a square fills it all, a circle pi/4, a triangle half). Detection
takes one box per blob, segmentation labels the blob's pixels (the colour threshold). Both
are exact on objects that touch no object of their own colour and merge those that do: what
a learned model has to beat on the embedded scenes."""

from __future__ import annotations

from typing import Any

from polymodal.plugin import Record

# A pixel belongs to an object when it is this far (summed over RGB) from the background.
FOREGROUND_DISTANCE = 60
# Blobs smaller than this many pixels are noise (anti-aliased edges).
MIN_PIXELS = 6


def shape_of(fill: float) -> str:
    """The shape whose box a blob filling ``fill`` of it looks like."""
    if fill > 0.9:
        return "square"
    return "circle" if fill > 0.64 else "triangle"


def blob_components(image: Any) -> list[tuple[Any, list[float], str]]:
    """(pixel mask, box [x, y, w, h], shape label) per blob of one colour in an RGB
    ``PIL.Image``, largest first, without the anti-aliasing slivers inside larger blobs."""
    import numpy as np
    from scipy import ndimage

    pixels = np.asarray(image, dtype=np.int32)
    corners = np.stack([pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]])
    background = np.median(corners, axis=0)
    foreground = np.abs(pixels - background).sum(axis=2) > FOREGROUND_DISTANCE
    blobs = []
    colours = {tuple(c) for c in pixels[foreground].reshape(-1, 3)}
    for colour in colours:
        same = foreground & (np.abs(pixels - np.array(colour)).sum(axis=2) < 30)
        labelled, _ = ndimage.label(same, structure=np.ones((3, 3)))
        for blob, where in enumerate(ndimage.find_objects(labelled), start=1):
            if where is None:
                continue
            area = int((labelled[where] == blob).sum())
            if area < MIN_PIXELS:
                continue
            rows, cols = where
            height, width = rows.stop - rows.start, cols.stop - cols.start
            blobs.append((labelled == blob, [float(cols.start), float(rows.start),
                                             float(width), float(height)],
                          shape_of(area / (width * height))))
    return _distinct(blobs)


def colour_blobs(image: Any) -> list[dict[str, Any]]:
    """``{label, score, box}`` per blob of one colour (the detection baseline)."""
    return [{"label": label, "score": 1.0, "box": box}
            for _, box, label in blob_components(image)]


def colour_threshold_mask(image: Any, classes: list[str]) -> Any:
    """A class-index mask: each blob's pixels labelled with its shape (the segmentation
    baseline; shapes not among ``classes`` and other pixels are class 0)."""
    import numpy as np

    mask = np.zeros((image.height, image.width), dtype=np.uint8)
    for pixels, _, label in reversed(blob_components(image)):  # smaller ones on top
        if label in classes:
            mask[pixels] = classes.index(label)
    return mask


def _distinct(blobs: list[tuple[Any, list[float], str]]
              ) -> list[tuple[Any, list[float], str]]:
    """Anti-aliased edges blend two colours into a third: drop blobs inside a larger one."""
    def inside(a: list[float], b: list[float]) -> bool:
        return (a[0] >= b[0] and a[1] >= b[1] and a[0] + a[2] <= b[0] + b[2]
                and a[1] + a[3] <= b[1] + b[3])

    kept: list[tuple[Any, list[float], str]] = []
    for blob in sorted(blobs, key=lambda b: -b[1][2] * b[1][3]):
        box = blob[1]
        if not any(inside(box, k[1]) and box[2] * box[3] < 0.25 * k[1][2] * k[1][3]
                   for k in kept):
            kept.append(blob)
    return kept


def colour_blob_baseline(classes: list[str]) -> Any:
    """The detection baseline as ``(train, test) -> metrics`` (training is not used)."""

    def baseline(train: list[Record], test: list[Record]) -> dict[str, Any]:
        from polymodal_vision.detection_metrics import detection_scores
        from polymodal_vision.images import open_image

        predictions = [{"objects": [o for o in colour_blobs(open_image(r["image"]))
                                    if o["label"] in classes]} for r in test]
        return detection_scores(test, predictions, classes)

    return baseline


def colour_threshold_baseline(classes: list[str]) -> Any:
    """The segmentation baseline as ``(train, test) -> metrics`` (training is not used)."""

    def baseline(train: list[Record], test: list[Record]) -> dict[str, Any]:
        from polymodal_vision.images import open_image
        from polymodal_vision.segment import segmentation_scores
        from polymodal_vision.segmentation_data import mask_array

        truth, guessed = [], []
        for index, record in enumerate(test):
            image = open_image(record["image"])
            truth.append(mask_array(record, classes, image.size, f"record {index + 1}"))
            guessed.append(colour_threshold_mask(image, classes))
        return segmentation_scores(truth, guessed, classes)

    return baseline
