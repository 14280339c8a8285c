"""``nlp.classify``: the general form of ``nlp.sentiment`` for any label set in a CSV/JSONL
(``--text-column``, ``--label-column``), multi-label included (``--multi-label``: one
sigmoid per label, labels given as a list or a ``|``-separated string; per-label F1).

Embedded default (multi-label): the sentences of the project's NER corpus labelled with
the kinds of entity they mention (PER, ORG, LOC, MISC; none, one or several)."""

from __future__ import annotations

from typing import Any

from polymodal.plugin import DemoData, Scenario

DEFAULT_SPEC = {
    "name": "classify",
    "data": {"validation": 0.1},
    "inputs": [{"name": "text", "modality": "text", "encoder": "minilm", "lr": 5.0e-5,
                "options": {"max_length": 128, "attention_dropout": 0.0}}],
    "fusion": {"name": "concat"},
    "task": {"name": "multilabel", "target": "labels"},
    "train": {"epochs": 4, "batch_size": 16, "lr": 1.0e-3, "warmup": 0.1, "seed": 0},
}


def entity_kind_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"text": r["text"], "labels": sorted({e["label"] for e in r["entities"]})}
            for r in records]


def load_demo() -> DemoData:
    from polymodal_nlp.ner_corpus import corpus

    train, test = corpus()
    return DemoData(train=entity_kind_records(train), test=entity_kind_records(test),
                    examples=[{"text": "Dr Amara Okafor moved from Lagos to work for the "
                                       "World Health Organization."},
                              {"text": "It rained all afternoon, so we baked bread."}],
                    source="the project's NER corpus: which entity kinds a sentence mentions")


def classify_scenario() -> Scenario:
    return Scenario(name="nlp.classify", description="text -> label(s), any label set, "
                    "multi-label included", default_spec=DEFAULT_SPEC, load_demo=load_demo,
                    quick_overrides=["inputs.0.frozen=true", "inputs.0.options.max_length=64",
                                     "train.epochs=3", "train.lr=0.02", "train.warmup=0"],
                    quick_records=120, primary_input="text")
