"""``vision.classify``: image -> label. Embedded default: scikit-learn digits (upscaled to
32x32), 80/20 split; ``lfw_subset`` faces vs non-faces is the second demo
(``vision.faces``), Fashion-MNIST (Debian's dataset-fashion-mnist) the third
(``vision.fashion``)."""

from __future__ import annotations

from typing import Any

from polymodal.plugin import DemoData, Scenario

SPEC: dict[str, Any] = {
    "name": "digits",
    "data": {"validation": 0.1},
    "inputs": [{"name": "image", "modality": "image", "encoder": "small-cnn",
                "options": {"image_size": 32, "width": 32, "output_dim": 128}}],
    "fusion": {"name": "concat", "options": {"dropout": 0.1}},
    "task": {"name": "classification", "target": "label"},
    "train": {"epochs": 12, "batch_size": 64, "lr": 3.0e-3, "warmup": 0.05,
              "schedule": "cosine", "seed": 0},
}


def load_digits_demo() -> DemoData:
    from polymodal_vision.datasets import digits, split

    train, test = split(digits(), 0.2)
    return DemoData(train=train, test=test, examples=[{"image": r["image"]} for r in test[:3]],
                    source="scikit-learn load_digits (upscaled to 32x32)")


def load_faces_demo() -> DemoData:
    from polymodal_vision.datasets import faces, split

    train, test = split(faces(), 0.25)
    return DemoData(train=train, test=test, examples=[{"image": r["image"]} for r in test[:3]],
                    source="scikit-image lfw_subset (100 faces, 100 non-faces)")


def load_fashion_demo() -> DemoData:
    from polymodal_vision.datasets import fashion_mnist

    test = fashion_mnist("test")
    return DemoData(train=fashion_mnist("train"), test=test,
                    examples=[{"image": r["image"]} for r in test[:3]],
                    source="Fashion-MNIST (Zalando, MIT; Debian dataset-fashion-mnist): "
                           "60,000 training and 10,000 test images, 28x28")


# From scratch at the images' own 28 pixels: three blocks (28 -> 14 -> 7 -> 4).
FASHION_SPEC: dict[str, Any] = {
    **SPEC, "name": "fashion-mnist", "data": {"validation": 0.05},
    "inputs": [{"name": "image", "modality": "image", "encoder": "small-cnn",
                "options": {"image_size": 28, "width": 32, "blocks": 3, "output_dim": 128}}],
    "train": {"epochs": 4, "batch_size": 128, "lr": 3.0e-3, "warmup": 0.05,
              "schedule": "cosine", "seed": 0},
}


def classify_scenario() -> Scenario:
    return Scenario(name="vision.classify", description="image -> label (embedded: digits)",
                    default_spec=SPEC, load_demo=load_digits_demo,
                    quick_overrides=["train.epochs=2"], quick_records=300,
                    primary_input="image")


def faces_scenario() -> Scenario:
    spec = {**SPEC, "name": "faces",
            "train": {**SPEC["train"], "epochs": 20, "batch_size": 16}}
    return Scenario(name="vision.faces", description="face or not (embedded: lfw_subset)",
                    default_spec=spec, load_demo=load_faces_demo,
                    quick_overrides=["train.epochs=2"], quick_records=100,
                    primary_input="image")


def fashion_scenario() -> Scenario:
    return Scenario(name="vision.fashion", description="clothing article (embedded: "
                    "Fashion-MNIST, 60,000 + 10,000 images)", default_spec=FASHION_SPEC,
                    load_demo=load_fashion_demo, quick_overrides=["train.epochs=1"],
                    quick_records=1000, primary_input="image")
