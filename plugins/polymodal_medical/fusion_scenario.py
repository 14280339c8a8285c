"""``medical.fusion``: a DICOM image + an EHR record -> outcome, through a core fusion, with
the modality ablation in the report (image only, EHR only, both).

Embedded default: the synthetic cohort of ``polymodal_medical.cohort`` (800 cases from one
real CT slice with synthetic lesions, and synthetic EHR records; 600 for training, 200 held
out)."""

from __future__ import annotations

from typing import Any

from polymodal.plugin import DemoData, Scenario
from polymodal_medical.scenarios import majority_outcome

TRAIN_CASES, TEST_CASES = 600, 200
SPEC: dict[str, Any] = {
    "name": "synthetic-ct-ehr",
    "data": {"validation": 0.1},
    "inputs": [
        {"name": "image", "modality": "dicom", "encoder": "dicom-image",
         "options": {"window": "soft-tissue", "backbone": "small-cnn",
                     "backbone_options": {"image_size": 64, "width": 32, "output_dim": 64,
                                          "blocks": 4}}},
        {"name": "ehr", "modality": "ehr", "encoder": "ehr-features", "options": {"dim": 32}},
    ],
    "fusion": {"name": "concat", "options": {"dropout": 0.1}},
    "task": {"name": "classification", "target": "outcome",
             "options": {"positive": "positive"}},
    "train": {"epochs": 30, "batch_size": 32, "lr": 2.0e-3, "seed": 0, "ablation_epochs": 15},
    "ablation": True,
}


def load_demo() -> DemoData:
    from polymodal_medical.cohort import cohort

    cases = cohort(TRAIN_CASES + TEST_CASES)
    train, test = cases[:TRAIN_CASES], cases[TRAIN_CASES:]
    return DemoData(train=train, test=test,
                    examples=[{"image": r["image"], "ehr": r["ehr"]} for r in test[:3]],
                    source=f"synthetic cohort: {TRAIN_CASES} + {TEST_CASES} cases from "
                           "pydicom's CT_small.dcm with synthetic lesions and EHR records")


def fusion_scenario() -> Scenario:
    return Scenario(name="medical.fusion", description="DICOM image + EHR record -> outcome "
                    "(embedded: a synthetic cohort built from a real CT slice)",
                    default_spec=SPEC, load_demo=load_demo,
                    baselines={"majority": majority_outcome},
                    quick_overrides=["train.epochs=12", "ablation=false"], quick_records=300,
                    primary_input="image")
