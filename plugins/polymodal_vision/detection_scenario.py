"""``vision.detect`` on the core lifecycle: its spec, embedded data (synthetic object
scenes: 4,000 for training, 500 held out) and data reader; the model is in
:mod:`polymodal_vision.detect` (imported only to train or load)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from polymodal.plugin import DemoData, FitRequest, InputSpec, Record, Scenario, TrainSpec

TRAIN_SCENES, TEST_SCENES = 4000, 500
QUICK_SCENES = 160
SCENE_SIZE = 64
# Detections below this score are dropped inside the detector; evaluation ranks all the
# rest (COCO's mAP needs the low-scoring tail), predictions show those above the spec's
# ``score_threshold``.
CANDIDATE_SCORE = 0.05


class DetectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "shape-detection"
    scenario: str = "vision.detect"
    # Any registered image encoder whose tokens are a square grid; small-cnn with three
    # blocks gives an 8x8 grid (stride 8) on the embedded 64 px scenes.
    image: InputSpec = InputSpec(name="image", modality="image", encoder="small-cnn",
                                 options={"image_size": 64, "width": 32, "output_dim": 128,
                                          "blocks": 3})
    detector: Literal["fcos", "retinanet"] = "fcos"
    # The class names, in order; default: the labels of the training records, sorted.
    classes: list[str] | None = None
    head_convs: int = Field(default=2, ge=1, le=4)
    # Detections a prediction shows (evaluation ranks every candidate for mAP); 0.5 has
    # the best F1 on the embedded held-out scenes (docs/benchmarks.md).
    score_threshold: float = Field(default=0.5, ge=0, le=1)
    nms_threshold: float = Field(default=0.6, gt=0, le=1)
    max_detections: int = Field(default=50, ge=1)
    # Training images mirrored left-right at random (boxes with them).
    flip: bool = True
    # The share of training images held out to pick the best epoch by mAP.
    validation: float = Field(default=0.1, ge=0, lt=1)
    # fp32 by default: under bf16 autocast a 64 px coordinate has a resolution of half a
    # pixel, which costs the strict IoU thresholds of mAP@[.5:.95].
    train: TrainSpec = TrainSpec(epochs=12, batch_size=32, lr=2.0e-3, warmup=0.1,
                                 monitor="map", precision="fp32")


def object_scenes(count: int, seed: int, size: int = SCENE_SIZE) -> list[Record]:
    """Object scene records ``{image, boxes, labels, mask, colors, sizes}``, cached."""
    from polymodal.plugin import build_once, cache_dir
    from polymodal_vision.object_scenes import generate

    directory = cache_dir(f"object-scenes-v1-{size}-{count}-{seed}")
    manifest = directory / "objects.jsonl"
    build_once(directory, manifest, lambda: generate(directory, count, size=size, seed=seed))
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def detect_demo() -> DemoData:
    train, test = object_scenes(TRAIN_SCENES, seed=0), object_scenes(TEST_SCENES, seed=1)
    keep = ("image", "boxes", "labels")
    return DemoData(train=[{k: r[k] for k in keep} for r in train],
                    test=[{k: r[k] for k in keep} for r in test],
                    examples=[{"image": r["image"]} for r in test[:2]],
                    source="synthetic object scenes (polymodal_vision.object_scenes)")


def fit_detector(request: FitRequest) -> dict[str, Any]:
    from polymodal_vision.detect import train_detector

    return train_detector(request)


def read_detection(path: str) -> list[Record]:
    from polymodal_vision.detection_data import read_detection_data

    return read_detection_data(path)


def load_detection_model(directory: Any, device: str | None = None,
                         precision: str = "fp32") -> Any:
    from polymodal_vision.detect import load_detector

    return load_detector(directory, device=device, precision=precision)


def detect_scenario() -> Scenario:
    return Scenario(name="vision.detect", description="image -> boxes, labels and scores "
                    "(torchvision FCOS on a registered image encoder; synthetic scenes)",
                    default_spec=DetectSpec().model_dump(mode="json"), spec_model=DetectSpec,
                    load_demo=detect_demo, fit=fit_detector, load_model=load_detection_model,
                    read_data=read_detection,
                    quick_overrides=["train.epochs=2", "validation=0"],
                    quick_records=QUICK_SCENES, primary_input="image")
