"""``vision.ground``: image + phrase -> the box of the object the phrase names, from
registered pieces: an image encoder (its grid tokens, with coordinate channels), a text
encoder for the phrase, the ``attention`` fusion in decoder mode (the image grid's cells
read the phrase's words in every layer) and the ``box-cells`` task (the cell holding the
object's centre, and that cell's box; cross-entropy + GIoU + L1). The report carries the
modality ablation (image only: a model that cannot know which object is meant) and the
random-object baseline.

Embedded default: the object scenes (4,000 for training, 500 held out) with up to three
referring phrases each from :mod:`polymodal_vision.phrases`."""

from __future__ import annotations

import random
from typing import Any

from polymodal.plugin import DemoData, Record, Scenario

SPEC = {
    "name": "scenes-grounding",
    "data": {"validation": 0.1},
    "inputs": [
        {"name": "image", "modality": "image", "encoder": "small-cnn",
         "options": {"image_size": 64, "width": 32, "output_dim": 128, "blocks": 3,
                     "coords": True}},
        {"name": "phrase", "modality": "text", "encoder": "word-transformer",
         "options": {"dim": 128, "layers": 1, "max_length": 12, "dropout": 0.0}},
    ],
    # Decoder mode with the image grid as the query: each cell reads the phrase in every
    # layer, and the box-cells task picks the cell holding the object's centre. Reading the
    # box off one summary vector instead (query: phrase, task: box) learned far slower
    # (docs/benchmarks.md).
    "fusion": {"name": "attention", "options": {"hidden": 128, "heads": 4, "layers": 2,
                                                "dropout": 0.0, "tokens": True,
                                                "query": "image"}},
    "task": {"name": "box-cells", "target": "box"},
    "train": {"epochs": 10, "batch_size": 64, "lr": 1.0e-3, "warmup": 0.05,
              "schedule": "cosine", "seed": 0, "group_by": "image", "ablation_epochs": 2},
    "ablation": True,
}
TRAIN_SCENES, TEST_SCENES = 4000, 500
PHRASES_PER_SCENE = 3


def _shape(record: Record, index: int) -> Any:
    from polymodal_vision.scenes import Shape

    x, y, w, _ = record["boxes"][index]
    radius = (w - 1) / 2
    return Shape(record["labels"][index], record["colors"][index], record["sizes"][index],
                 x + radius, y + radius, radius)


def grounding_records(scenes: list[Record], seed: int) -> list[Record]:
    """Up to ``PHRASES_PER_SCENE`` phrases per scene: ``{image, phrase, box, candidates}``
    (``candidates``: every object's box, for the random-object baseline)."""
    from polymodal_vision.phrases import sample_phrases

    rng = random.Random(seed)
    records = []
    for scene in scenes:
        shapes = [_shape(scene, i) for i in range(len(scene["boxes"]))]
        for phrase, index in sample_phrases(shapes, rng, PHRASES_PER_SCENE):
            records.append({"image": scene["image"], "phrase": phrase,
                            "box": scene["boxes"][index], "candidates": scene["boxes"]})
    return records


def load_demo() -> DemoData:
    from polymodal_vision.detection_scenario import object_scenes

    train = grounding_records(object_scenes(TRAIN_SCENES, seed=0), seed=0)
    test = grounding_records(object_scenes(TEST_SCENES, seed=1), seed=1)
    examples = [{"image": r["image"], "phrase": r["phrase"]} for r in test[:3]]
    return DemoData(train=train, test=test, examples=examples,
                    source=f"synthetic object scenes with referring phrases "
                           f"({TRAIN_SCENES} train, {TEST_SCENES} test scenes)")


def random_object(train: list[Record], test: list[Record]) -> dict[str, Any]:
    """Pointing at one of the scene's objects at random: the expected accuracy and mean
    IoU (exact expectations over the candidates, no sampling)."""
    from polymodal_vision.object_scenes import box_iou

    hits = ious = 0.0
    for record in test:
        scores = [box_iou(c, record["box"]) for c in record["candidates"]]
        hits += sum(s >= 0.5 for s in scores) / len(scores)
        ious += sum(scores) / len(scores)
    return {"accuracy": hits / len(test), "mean_iou": ious / len(test), "n": len(test)}


def ground_scenario() -> Scenario:
    return Scenario(name="vision.ground", description="image + phrase -> the box of the "
                    "object it names (synthetic object scenes)", default_spec=SPEC,
                    load_demo=load_demo, quick_overrides=["train.epochs=2", "ablation=false"],
                    quick_records=300, baselines={"random object": random_object})
