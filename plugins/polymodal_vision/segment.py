"""``vision.segment``: a class for every pixel (semantic segmentation).

Any registered image encoder gives the coarse, semantic half: its grid tokens as a feature
map. A two-convolution stem at full resolution gives the fine half (edges, colour), and
torchvision's LR-ASPP head joins them (the high branch gated by its global context and
upsampled onto the low one), so the logits come out at the input's resolution. Trained by
the core Trainer with cross-entropy, validated by mIoU; metrics from torchmetrics (IoU per
class, Dice, pixel accuracy); predictions are masks (PNG files with ``--out``, base64
otherwise) and overlays with ``--draw``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from polymodal.plugin import BasePredictor, DataError, ExportGraph, FitRequest, Record
from polymodal_vision.image_predictor import ImagePredictor
from polymodal_vision.png_outputs import PngOutputs
from polymodal_vision.segmentation_scenario import SegmentSpec

if TYPE_CHECKING:
    from polymodal_vision.encoders import ImageEncoder


class Segmenter(nn.Module):
    """Encoder grid (high) + full-resolution stem (low) -> LR-ASPP head -> [B, K, S, S]."""

    def __init__(self, spec: SegmentSpec, encoder: ImageEncoder, classes: list[str]) -> None:
        super().__init__()
        from torchvision.models.segmentation.lraspp import LRASPPHead

        from polymodal_vision.detect import EncoderBackbone

        self.backbone = EncoderBackbone(encoder)
        width = spec.stem_width
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU())
        self.head = LRASPPHead(width, encoder.output_dim, len(classes), spec.head_width)
        self.size = encoder.processor.size

    @property
    def processor(self) -> Any:
        return self.backbone.encoder.processor

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        return cast("torch.Tensor", self.head({"low": self.stem(pixels),
                                               "high": self.backbone(pixels)["0"]}))

    def forward(self, pixels: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Mean per-pixel cross-entropy against class-index ``masks`` [B, S, S]."""
        return nn.functional.cross_entropy(self.logits(pixels).float(), masks)


class SegmentationCollator:
    """Items -> (pixels, masks [B, S, S] int64): masks resized to the encoder's size by
    nearest neighbour (classes are not averaged); random mirroring with ``flip``."""

    def __init__(self, processor: Any, classes: list[str], flip: bool) -> None:
        self.processor, self.classes, self.flip = processor, classes, flip

    def __call__(self, records: list[Record]) -> tuple[torch.Tensor, torch.Tensor]:
        import numpy as np
        from PIL import Image

        from polymodal_vision.images import open_image
        from polymodal_vision.segmentation_data import mask_array

        images = [open_image(r["image"]) for r in records]
        pixels = self.processor(images)["pixels"]
        size = pixels.shape[-1]
        masks = torch.zeros(len(records), size, size, dtype=torch.int64)
        for i, (record, image) in enumerate(zip(records, images, strict=True)):
            array = mask_array(record, self.classes, image.size, f"record {i + 1}")
            resized = Image.fromarray(array).resize((size, size), Image.Resampling.NEAREST)
            masks[i] = torch.from_numpy(np.asarray(resized).copy())
            if self.flip and torch.rand(()) < 0.5:
                pixels[i], masks[i] = pixels[i].flip(-1), masks[i].flip(-1)
        return pixels, masks


def segmentation_scores(truth: list[Any], predicted: list[Any], classes: list[str]
                        ) -> dict[str, Any]:
    """IoU per class and their mean (mIoU), Dice per class (the pixel F1) and its mean over
    the classes other than the first (background), pixel accuracy: torchmetrics over all
    pixels of all images, each pair of class-index arrays of one image's size."""
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassF1Score,
        MulticlassJaccardIndex,
    )

    count = len(classes)
    iou = MulticlassJaccardIndex(count, average=None)
    dice = MulticlassF1Score(count, average=None, multidim_average="global")
    accuracy = MulticlassAccuracy(count, average="micro")
    for gold, guess in zip(truth, predicted, strict=True):
        # Copies: a PIL image's array is read-only, which torch will not share.
        gold_t, guess_t = torch.tensor(gold).long(), torch.tensor(guess).long()
        for metric in (iou, dice, accuracy):
            metric.update(guess_t.reshape(-1), gold_t.reshape(-1))
    per_class = iou.compute().tolist()
    dice_per_class = dice.compute().tolist()
    return {"miou": round(sum(per_class) / count, 4),
            "dice": round(sum(dice_per_class[1:]) / max(count - 1, 1), 4),
            "pixel_accuracy": round(float(accuracy.compute()), 4),
            "iou_per_class": {c: round(v, 4) for c, v in zip(classes, per_class, strict=True)},
            "dice_per_class": {c: round(v, 4)
                               for c, v in zip(classes, dice_per_class, strict=True)},
            "n": len(truth)}


def mask_png(array: Any) -> bytes:
    """A class-index array as an 8-bit grey PNG (pixel value = class index)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array.astype("uint8"), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


class SegmentationModel(PngOutputs, ImagePredictor):
    """A trained segmenter (the ``polymodal.load`` object of a vision.segment directory):
    per image, the class-index mask at the image's own size and each class's share of the
    pixels."""

    scenario = "vision.segment"
    draws = True

    def __init__(self, spec: SegmentSpec, model: Segmenter, classes: list[str],
                 device: torch.device, manifest: dict[str, Any] | None = None,
                 precision: str = "fp32") -> None:
        ImagePredictor.__init__(self, model, device, precision, manifest)
        PngOutputs.__init__(self)
        self.spec, self.model, self.classes = spec, model, classes
        self.encoder_name = spec.image.encoder
        self._arrays = False  # evaluation wants the arrays, not PNGs

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "segmentation", "target": "mask", "classes": self.classes,
                "mask": "a PNG of the input's size whose pixel values are class indices"}

    def preprocess(self, records: list[Record]) -> dict[str, Any]:
        images = self.open_images(records)
        return {"pixels": self.model.processor(images)["pixels"],
                "sizes": [image.size for image in images]}

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.model.logits(batch["pixels"]).float()

    def postprocess(self, outputs: torch.Tensor, batch: Any, records: list[Record]
                    ) -> list[Record]:
        results = []
        for logits, (width, height) in zip(outputs, batch["sizes"], strict=True):
            # Logits, not labels, are resized to the image: edges stay smooth when enlarged.
            resized = nn.functional.interpolate(logits[None], size=(height, width),
                                                mode="bilinear", align_corners=False)
            array = resized[0].argmax(0).to(torch.uint8).cpu().numpy()
            counts = torch.bincount(torch.from_numpy(array).reshape(-1).long(),
                                    minlength=len(self.classes)).tolist()
            result: Record = {"area": {c: round(n / array.size, 4)
                                       for c, n in zip(self.classes, counts, strict=True)
                                       if n}}
            if self._arrays:
                result["array"] = array
            else:
                result.update(self.png_result(mask_png(array), "mask"))
            results.append(result)
        return results

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        from polymodal_vision.segmentation_data import check_segmentation_records

        labelled = [r for r in records if r.get("mask") is not None or "segments" in r]
        if not labelled:
            raise DataError("no record has a \"mask\" (or COCO segments) to evaluate against")
        check_segmentation_records(labelled, self.classes)
        return labelled

    def evaluate(self, records: list[Record], batch_size: int = 64) -> dict[str, Any]:
        previous, self._arrays = self._arrays, True
        try:
            return super().evaluate(records, batch_size)
        finally:
            self._arrays = previous

    def score(self, records: list[Record], predictions: list[Record]) -> dict[str, Any]:
        from polymodal_vision.images import open_image
        from polymodal_vision.segmentation_data import mask_array

        truth = [mask_array(r, self.classes, open_image(r["image"]).size, f"record {i + 1}")
                 for i, r in enumerate(records)]
        return segmentation_scores(truth, [p["array"] for p in predictions], self.classes)

    def draw(self, record: Record, prediction: Record) -> Any:
        """The image with each class's pixels tinted in its colour (background untouched)."""
        import base64

        import numpy as np
        from PIL import Image

        from polymodal_vision.drawing import colour_of
        from polymodal_vision.images import open_image

        image = open_image(record["image"])
        if "mask" in prediction:  # a file --out wrote
            mask = np.asarray(Image.open(prediction["mask"]))
        else:
            mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(
                prediction["mask_png_base64"]))))
        pixels = np.asarray(image, dtype=np.float32).copy()
        for index, name in enumerate(self.classes[1:], start=1):
            where = mask == index
            pixels[where] = 0.45 * pixels[where] + 0.55 * np.array(colour_of(name))
        return Image.fromarray(pixels.round().astype(np.uint8))

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """Normalised pixels [B, 3, S, S] -> class logits [B, K, S, S]; the argmax and the
        resize to each image's size stay with the runtime."""
        size = self.model.size
        generator = torch.Generator().manual_seed(0)

        def batch(n: int) -> list[torch.Tensor]:
            return [torch.rand(n, 3, size, size, generator=generator) * 2 - 1]

        return ExportGraph(module=_Logits(self.model), inputs=["pixels"], outputs=["logits"],
                           trace=batch(1), check=batch(3), fixed_axes={"pixels": [1, 2, 3]},
                           sidecar={"task": "segmentation", "classes": self.classes,
                                    "image_size": size})


class _Logits(nn.Module):
    def __init__(self, model: Segmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.logits(pixels)


def train_segmenter(request: FitRequest) -> dict[str, Any]:
    """Check every image and mask (before anything is written), fit with the core Trainer
    (best epoch by validation mIoU), score beside the colour-threshold baseline."""
    from polymodal_vision.class_maps import fit_class_map_model
    from polymodal_vision.colour_baselines import colour_threshold_baseline
    from polymodal_vision.segmentation_data import check_segmentation_records

    spec: SegmentSpec = request.spec
    if not request.train:
        raise DataError("no images with masks to train on")
    classes = spec.classes
    check_segmentation_records(request.train, classes, what="training record")
    if request.test:
        check_segmentation_records(request.test, classes, what="test record")

    def build(encoder: ImageEncoder) -> tuple[nn.Module, Any, BasePredictor]:
        segmenter = Segmenter(spec, encoder, classes)
        return (segmenter, SegmentationCollator(encoder.processor, classes, spec.flip),
                SegmentationModel(spec, segmenter, classes, torch.device("cpu")))

    return fit_class_map_model(request, kind="segmentation", classes=classes, build=build,
                               baselines={"colour threshold":
                                          colour_threshold_baseline(classes)})


def load_segmenter(directory: str | Path, device: str | None = None,
                   precision: str = "fp32") -> SegmentationModel:
    from polymodal_vision.class_maps import load_class_map_model

    spec, segmenter, classes, manifest, torch_device = load_class_map_model(
        directory, SegmentSpec, "segmentation", Segmenter, device)
    return SegmentationModel(spec, cast("Segmenter", segmenter), classes, torch_device,
                             manifest, precision)
