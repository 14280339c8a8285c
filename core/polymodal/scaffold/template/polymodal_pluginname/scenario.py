"""The ``pluginname.inside`` scenario: its default spec, embedded data and a baseline."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from polymodal.plugin import DemoData, Record, Scenario

SPEC: dict[str, Any] = {
    "name": "pluginname-inside",
    "data": {"validation": 0.1},
    "inputs": [
        {"name": "point", "modality": "pluginname-point", "encoder": "pluginname-point-mlp",
         "options": {"hidden": 32}},
        {"name": "colour", "modality": "categorical", "encoder": "categorical",
         "options": {"dim": 4}},
    ],
    "fusion": {"name": "pluginname-sum", "options": {"width": 32}},
    "task": {"name": "pluginname-binary", "target": "label"},
    "train": {"epochs": 30, "batch_size": 32, "lr": 0.01, "seed": 0},
}
RADIUS_SQUARED = 0.5  # about 39% of the square lies inside


def points(count: int, seed: int) -> list[Record]:
    """Seeded points of [-1, 1]^2, labelled by the circle; the colour is noise."""
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        x, y = rng.uniform(-1, 1), rng.uniform(-1, 1)
        label = "inside" if x * x + y * y < RADIUS_SQUARED else "outside"
        records.append({"point": {"x": round(x, 4), "y": round(y, 4)},
                        "colour": rng.choice(["red", "green", "blue"]), "label": label})
    return records


def load_demo() -> DemoData:
    return DemoData(train=points(480, seed=1), test=points(120, seed=2),
                    examples=[{"point": {"x": 0.0, "y": 0.1}, "colour": "red"},
                              {"point": {"x": 0.9, "y": -0.9}, "colour": "blue"}],
                    source="600 seeded points (polymodal_pluginname.scenario.points)")


def majority(train: list[Record], test: list[Record]) -> dict[str, Any]:
    """Always the most common training label: what a model must beat."""
    label = Counter(r["label"] for r in train).most_common(1)[0][0]
    return {"accuracy": sum(r["label"] == label for r in test) / max(len(test), 1)}


def inside_scenario() -> Scenario:
    return Scenario(name="pluginname.inside", description="is a point inside the circle?",
                    default_spec=SPEC, load_demo=load_demo, baselines={"majority": majority},
                    quick_overrides=["train.epochs=15"], quick_records=480,
                    primary_input="point")
