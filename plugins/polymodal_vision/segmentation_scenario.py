"""``vision.segment`` on the core lifecycle: its spec, embedded data (the object scenes'
class-index masks: 4,000 for training, 500 held out) and reader; the model is in
:mod:`polymodal_vision.segment` (imported only to train or load)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from polymodal.plugin import DemoData, FitRequest, InputSpec, Record, Scenario, TrainSpec

TRAIN_SCENES, TEST_SCENES = 4000, 500
QUICK_SCENES = 160


class SegmentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "shape-segmentation"
    scenario: str = "vision.segment"
    image: InputSpec = InputSpec(name="image", modality="image", encoder="small-cnn",
                                 options={"image_size": 64, "width": 32, "output_dim": 128,
                                          "blocks": 3})
    # Class names by mask value (0 first: the background); COCO categories are matched
    # to them by name.
    classes: list[str] = Field(default=["background", "circle", "square", "triangle"],
                               min_length=2)
    stem_width: int = Field(default=32, ge=4)
    head_width: int = Field(default=64, ge=4)
    flip: bool = True
    validation: float = Field(default=0.1, ge=0, lt=1)
    train: TrainSpec = TrainSpec(epochs=4, batch_size=32, lr=2.0e-3, warmup=0.1,
                                 monitor="miou")


def segment_demo() -> DemoData:
    from polymodal_vision.detection_scenario import object_scenes

    train = object_scenes(TRAIN_SCENES, seed=0)
    test = object_scenes(TEST_SCENES, seed=1)
    return DemoData(train=[{"image": r["image"], "mask": r["mask"]} for r in train],
                    test=[{"image": r["image"], "mask": r["mask"]} for r in test],
                    examples=[{"image": r["image"]} for r in test[:2]],
                    source="synthetic object scenes (polymodal_vision.object_scenes)")


def fit_segmenter(request: FitRequest) -> dict[str, Any]:
    from polymodal_vision.segment import train_segmenter

    return train_segmenter(request)


def read_segmentation(path: str) -> list[Record]:
    from polymodal_vision.segmentation_data import read_segmentation_data

    return read_segmentation_data(path)


def load_segmentation_model(directory: Any, device: str | None = None,
                            precision: str = "fp32") -> Any:
    from polymodal_vision.segment import load_segmenter

    return load_segmenter(directory, device=device, precision=precision)


def segment_scenario() -> Scenario:
    return Scenario(name="vision.segment", description="image -> a class for every pixel "
                    "(LR-ASPP head on a registered image encoder; synthetic scenes)",
                    default_spec=SegmentSpec().model_dump(mode="json"), spec_model=SegmentSpec,
                    load_demo=segment_demo, fit=fit_segmenter,
                    load_model=load_segmentation_model, read_data=read_segmentation,
                    quick_overrides=["train.epochs=2", "validation=0"],
                    quick_records=QUICK_SCENES, primary_input="image")
