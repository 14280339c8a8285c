"""``vision.detect``: boxes, labels and scores for any number of objects in an image.

A torchvision single-stage detector (FCOS by default, RetinaNet by ``detector``) whose
backbone is any registered image encoder: the encoder's grid tokens [B, h*w, D] are its one
feature map [B, D, h, w], so the pixels come from the encoder's own processor (in the
collate step) and torchvision's transform neither resizes nor normalises again. Trained by
the core Trainer (the detector's summed losses), validated by COCO mAP, scored with
torchmetrics ``MeanAveragePrecision``; predictions are ``{"objects": [{label, score, box:
[x, y, w, h]}]}`` in the pixels of the input image, and ``--draw DIR`` draws them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from polymodal.plugin import (
    BasePredictor,
    DataError,
    ExportGraph,
    FitRequest,
    Record,
    SpecError,
)
from polymodal_vision.detection_scenario import CANDIDATE_SCORE, DetectSpec
from polymodal_vision.image_predictor import ImagePredictor

if TYPE_CHECKING:
    from polymodal_vision.encoders import ImageEncoder


class EncoderBackbone(nn.Module):
    """A registered image encoder as a torchvision detection backbone: its square grid of
    tokens as one feature map, with ``out_channels`` as torchvision asks."""

    def __init__(self, encoder: ImageEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.out_channels = encoder.output_dim

    def forward(self, pixels: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        tokens = self.encoder({"pixels": pixels}).tokens
        if tokens is None:
            raise SpecError("vision.detect needs an image encoder with grid tokens")
        batch, count, width = tokens.shape
        # The grid's size is fixed by the image size (an export traces it as a constant).
        side = math.isqrt(int(count))
        if side * side != count:
            raise SpecError(f"vision.detect: the encoder's {count} tokens are not a square "
                            "grid")
        return OrderedDict([("0", tokens.transpose(1, 2).reshape(batch, width, side, side))])


def _stride(backbone: EncoderBackbone, size: int) -> int:
    """Pixels per grid cell of ``backbone`` on ``size`` px images (one probe forward)."""
    was = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device  # a hub-shared frozen encoder may be on a GPU
    with torch.no_grad():
        side = backbone(torch.zeros(1, 3, size, size, device=device))["0"].shape[-1]
    backbone.train(was)
    if size % side:
        raise SpecError(f"vision.detect: a {size} px image gives a {side}x{side} grid; "
                        "choose an image_size the grid divides")
    return size // side


class Detector(nn.Module):
    """The torchvision detector over an encoder backbone. ``forward`` is the summed loss
    (training and validation alike, so DDP synchronises it); ``detect`` the detections."""

    def __init__(self, spec: DetectSpec, encoder: ImageEncoder, classes: list[str]) -> None:
        super().__init__()
        from torchvision.models.detection import FCOS, RetinaNet
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.fcos import FCOSHead
        from torchvision.models.detection.retinanet import RetinaNetHead

        backbone = EncoderBackbone(encoder)
        size = encoder.processor.size
        stride = _stride(backbone, size)
        common: dict[str, Any] = {
            # The encoder's processor already resized and normalised the pixels.
            "min_size": size, "max_size": size, "image_mean": [0.0, 0.0, 0.0],
            "image_std": [1.0, 1.0, 1.0], "size_divisible": 1,
            "score_thresh": CANDIDATE_SCORE, "nms_thresh": spec.nms_threshold,
            "detections_per_img": spec.max_detections}
        width, count = backbone.out_channels, len(classes)
        if spec.detector == "fcos":
            # One level: its anchor size is the stride (FCOS's centre-sampling unit).
            anchors = AnchorGenerator(((stride,),), ((1.0,),))
            self.model: nn.Module = FCOS(
                backbone, count, anchor_generator=anchors,
                head=FCOSHead(width, 1, count, num_convs=spec.head_convs), **common)
        else:
            sizes = tuple(round(stride * k) for k in (1.5, 2.5, 3.5))
            anchors = AnchorGenerator((sizes,), ((0.5, 1.0, 2.0),))
            head = RetinaNetHead(width, anchors.num_anchors_per_location()[0], count)
            self.model = RetinaNet(backbone, count, anchor_generator=anchors, head=head,
                                   **common)
        self.size, self.stride, self.kind = size, stride, spec.detector

    @property
    def processor(self) -> Any:
        return cast("EncoderBackbone", self.model.backbone).encoder.processor

    def forward(self, pixels: torch.Tensor, targets: list[dict[str, torch.Tensor]]
                ) -> torch.Tensor:
        # torchvision returns losses only from a module in training mode; validation wants
        # them too, with the backbone's normalisation in eval mode: so only the top-level
        # flag is set, not the submodules'.
        was = self.model.training
        self.model.training = True
        try:
            losses = self.model(list(pixels), targets)
        finally:
            self.model.training = was
        return cast("torch.Tensor", sum(losses.values()))

    def detect(self, pixels: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return cast("list[dict[str, torch.Tensor]]", self.model(list(pixels)))


class DetectionCollator:
    """Training items -> (pixels, targets): images through the encoder's processor, boxes
    scaled into its pixels as [x0, y0, x1, y1], labels as class indices; random mirroring
    with ``flip``. Runs in DataLoader workers (pickles without the model)."""

    def __init__(self, processor: Any, classes: list[str], flip: bool) -> None:
        self.processor, self.flip = processor, flip
        self.index = {name: i for i, name in enumerate(classes)}

    def __call__(self, records: list[Record]) -> tuple[torch.Tensor,
                                                        list[dict[str, torch.Tensor]]]:
        from polymodal_vision.images import open_image

        images = [open_image(r["image"]) for r in records]
        pixels = self.processor(images)["pixels"]
        size = pixels.shape[-1]
        targets = []
        for i, (record, image) in enumerate(zip(records, images, strict=True)):
            width, height = image.size
            boxes = torch.tensor(record["boxes"], dtype=torch.float32).reshape(-1, 4)
            boxes = torch.stack([boxes[:, 0], boxes[:, 1], boxes[:, 0] + boxes[:, 2],
                                 boxes[:, 1] + boxes[:, 3]], dim=1)
            boxes *= torch.tensor([size / width, size / height] * 2)
            boxes = boxes.clamp(0, size)
            if self.flip and torch.rand(()) < 0.5:
                pixels[i] = pixels[i].flip(-1)
                boxes = torch.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0],
                                     boxes[:, 3]], dim=1)
            targets.append({"boxes": boxes, "labels": torch.tensor(
                [self.index[label] for label in record["labels"]], dtype=torch.int64)})
        return pixels, targets


class DetectionModel(ImagePredictor):
    """A trained detector (the ``polymodal.load`` object of a vision.detect directory)."""

    scenario = "vision.detect"
    draws = True

    def __init__(self, spec: DetectSpec, model: Detector, classes: list[str],
                 device: torch.device, manifest: dict[str, Any] | None = None,
                 precision: str = "fp32") -> None:
        super().__init__(model, device, precision, manifest)
        self.spec, self.model, self.classes = spec, model, classes
        self.min_score = spec.score_threshold
        self.encoder_name = spec.image.encoder

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "detection", "target": "objects", "classes": self.classes,
                "object": {"label": "class name", "score": "0-1",
                           "box": "[x, y, w, h] in pixels of the input image"}}

    def preprocess(self, records: list[Record]) -> dict[str, torch.Tensor]:
        images = self.open_images(records)
        return {"pixels": self.model.processor(images)["pixels"],
                "sizes": torch.tensor([image.size for image in images], dtype=torch.float32)}

    def forward(self, batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return self.model.detect(batch["pixels"])

    def postprocess(self, outputs: list[dict[str, torch.Tensor]], batch: Any,
                    records: list[Record]) -> list[Record]:
        results = []
        for detections, (width, height) in zip(outputs, batch["sizes"].tolist(), strict=True):
            scale = torch.tensor([width / self.model.size, height / self.model.size] * 2)
            boxes = detections["boxes"].float().cpu() * scale
            objects = []
            for box, label, score in zip(boxes.tolist(), detections["labels"].tolist(),
                                         detections["scores"].float().tolist(), strict=True):
                if score >= self.min_score:
                    objects.append({"label": self.classes[label], "score": round(score, 4),
                                    "box": [round(box[0], 2), round(box[1], 2),
                                            round(box[2] - box[0], 2),
                                            round(box[3] - box[1], 2)]})
            results.append({"objects": objects})
        return results

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        from polymodal_vision.detection_data import check_records

        labelled = [r for r in records if "boxes" in r and "labels" in r]
        if not labelled:
            raise DataError("no record has \"boxes\" and \"labels\" to evaluate against")
        check_records(labelled, self.classes)
        return labelled

    def evaluate(self, records: list[Record], batch_size: int = 64) -> dict[str, Any]:
        """COCO mAP over every candidate detection (not only those ``predict`` shows)."""
        previous, self.min_score = self.min_score, 0.0
        try:
            return super().evaluate(records, batch_size)
        finally:
            self.min_score = previous

    def score(self, records: list[Record], predictions: list[Record]) -> dict[str, Any]:
        from polymodal_vision.detection_metrics import detection_scores

        return detection_scores(records, predictions, self.classes)

    def draw(self, record: Record, prediction: Record) -> Any:
        """The input image with each predicted box and its label and score."""
        from polymodal_vision.drawing import draw_boxes
        from polymodal_vision.images import open_image

        return draw_boxes(open_image(record["image"]), prediction["objects"])

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """Normalised pixels [B, 3, S, S] -> the head's raw outputs over the grid (class
        logits, box regression and, for FCOS, centre-ness, one row per grid cell in
        row-major order); decoding boxes from the cells and NMS stay with the runtime,
        whose parameters are in the sidecar."""
        size = self.model.size
        generator = torch.Generator().manual_seed(0)

        def batch(n: int) -> list[torch.Tensor]:
            return [torch.rand(n, 3, size, size, generator=generator) * 2 - 1]

        head = _HeadOutputs(self.model)
        return ExportGraph(module=head, inputs=["pixels"], outputs=list(head.names),
                           trace=batch(1), check=batch(3), fixed_axes={"pixels": [1, 2, 3]},
                           sidecar={"task": "detection", "detector": self.spec.detector,
                                    "classes": self.classes, "image_size": size,
                                    "stride": self.model.stride,
                                    "score_threshold": self.spec.score_threshold,
                                    "nms_threshold": self.spec.nms_threshold})


class _HeadOutputs(nn.Module):
    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.detector = detector
        self.names = ["cls_logits", "bbox_regression"] + (
            ["bbox_ctrness"] if detector.kind == "fcos" else [])

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model: Any = self.detector.model
        features = list(model.backbone(pixels).values())
        outputs = model.head(features)
        return tuple(outputs[name] for name in self.names)


def train_detector(request: FitRequest) -> dict[str, Any]:
    """Check every record (before anything is written), then fit the detector with the core
    Trainer (best epoch by validation mAP) and score it beside the colour-blob baseline."""
    from polymodal_vision.class_maps import fit_class_map_model
    from polymodal_vision.colour_baselines import colour_blob_baseline
    from polymodal_vision.detection_data import check_records

    spec: DetectSpec = request.spec
    if not request.train:
        raise DataError("no images with boxes to train on")
    check_records(request.train, spec.classes, what="training record")
    classes = spec.classes or sorted({label for r in request.train for label in r["labels"]})
    if not classes:
        raise DataError("the training records hold no boxes: nothing to learn")
    if request.test:
        check_records(request.test, classes, what="test record")

    def build(encoder: ImageEncoder) -> tuple[nn.Module, Any, BasePredictor]:
        detector = Detector(spec, encoder, classes)
        return (detector, DetectionCollator(encoder.processor, classes, spec.flip),
                DetectionModel(spec, detector, classes, torch.device("cpu")))

    return fit_class_map_model(request, kind="detection", classes=classes, build=build,
                               baselines={"colour blobs": colour_blob_baseline(classes)})


def load_detector(directory: str | Path, device: str | None = None,
                  precision: str = "fp32") -> DetectionModel:
    from polymodal_vision.class_maps import load_class_map_model

    spec, detector, classes, manifest, torch_device = load_class_map_model(
        directory, DetectSpec, "detection", Detector, device)
    return DetectionModel(spec, cast("Detector", detector), classes, torch_device, manifest,
                          precision)
