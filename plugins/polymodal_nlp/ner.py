"""``nlp.ner``: named entities as character spans, on the core path: a registered text
encoder (``minilm`` by default) -> the ``tokens`` fusion -> the core ``token-classification``
task. Training, checkpoints, resume, torchrun, predict, serve and export are the core's;
this module holds the scenario's defaults, its embedded data, the CoNLL baseline and an
export to a plain transformers token-classification folder.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from polymodal.plugin import DemoData, Record, Scenario

# No validation split by default: the embedded test names are disjoint from training, but a
# random validation split shares its names with training and saturates early, which makes
# it a poor judge of the best epoch (docs/benchmarks.md#nlp has both runs).
DEFAULT_SPEC: dict[str, Any] = {
    "name": "ner",
    "data": {"validation": 0.0},
    "inputs": [{"name": "text", "modality": "text", "encoder": "minilm",
                "options": {"max_length": 128, "attention_dropout": 0.0}}],
    "fusion": {"name": "tokens", "options": {"dropout": 0.0}},  # the head has its own
    "task": {"name": "token-classification", "target": "entities"},
    # Sentences of similar lengths: bucketing saves little padding, and mixed batches
    # learned better here (docs/benchmarks.md#nlp).
    "train": {"epochs": 3, "batch_size": 16, "lr": 1.0e-4, "warmup": 0.1, "seed": 0,
              "bucket_by_length": False},
}

EXAMPLES = [{"text": "Ingrid Holm flew from Reykjavik to a meeting at Northwind Bank on "
                     "Easter Monday."}]


def memorised_baseline(train: list[Record], test: list[Record]) -> dict[str, Any]:
    """The CoNLL-2003 baseline: tag every occurrence of an entity string seen in training
    with its most frequent training label."""
    from polymodal.plugin import score_spans

    labels: dict[str, Counter[str]] = defaultdict(Counter)
    for record in train:
        for e in record["entities"]:
            labels[record["text"][e["start"]:e["end"]]][e["label"]] += 1
    names = sorted(labels, key=len, reverse=True)
    predicted = []
    for record in test:
        spans, taken = [], [False] * len(record["text"])
        for name in names:
            for match in re.finditer(rf"\b{re.escape(name)}\b", record["text"]):
                if not any(taken[match.start():match.end()]):
                    spans.append({"start": match.start(), "end": match.end(),
                                  "label": labels[name].most_common(1)[0][0]})
                    taken[match.start():match.end()] = [True] * (match.end() - match.start())
        predicted.append(spans)
    return score_spans([r["entities"] for r in test], predicted)


REAL_TEST = "real sentences (115 hand-labelled: news, reviews, tweets)"


def real_test() -> list[Record]:
    from polymodal_nlp.ner_real import real_sentences

    return real_sentences()


def load_demo() -> DemoData:
    from polymodal_nlp.ner_corpus import corpus

    train, test = corpus()
    return DemoData(train=train, test=test, examples=EXAMPLES,
                    source="the project's PER/ORG/LOC/MISC corpus (names disjoint between "
                           "train and test)")


def ner_scenario() -> Scenario:
    return Scenario(
        name="nlp.ner",
        description="text -> named entities (PER, ORG, LOC, MISC)",
        default_spec=DEFAULT_SPEC,
        load_demo=load_demo,
        quick_overrides=["train.epochs=2", "inputs.0.options.max_length=64"],
        quick_records=48,
        primary_input="text",
        baselines={"memorised names (CoNLL baseline)": memorised_baseline},
        extra_tests={REAL_TEST: real_test},
    )


# nlp.ner_real: the templates plus real text. Shorter windows (the sentences and tweets are
# short) and two epochs over four times the sentences (docs/benchmarks.md#nlp).
SILVER_SENTENCES = 1200
REAL_SPEC: dict[str, Any] = {
    **DEFAULT_SPEC, "name": "ner-real",
    "inputs": [{**DEFAULT_SPEC["inputs"][0],
                "options": {"max_length": 64, "attention_dropout": 0.0}}],
    "train": {**DEFAULT_SPEC["train"], "epochs": 2},
}


def load_real_demo() -> DemoData:
    """The template corpus' training sentences, silver news sentences (the Lee corpus
    labelled by spaCy's medium pipeline) and the WNUT-16 tweets; tested on the template
    test split, and on the hand-labelled real sentences beside it."""
    from polymodal_nlp.ner_corpus import corpus
    from polymodal_nlp.ner_real import silver_records, wnut_records

    train, test = corpus()
    silver, tweets = silver_records(SILVER_SENTENCES), wnut_records()
    # Interleaved, so that --quick's first records hold all three.
    mixed = [r for group in zip(train, silver, tweets, strict=False) for r in group]
    rest = train[len(mixed) // 3:] + silver[len(mixed) // 3:] + tweets[len(mixed) // 3:]
    return DemoData(train=mixed + rest, test=test, examples=EXAMPLES,
                    source=f"the project's corpus ({len(train)} sentences), {len(silver)} "
                           "Lee corpus news sentences labelled by spaCy en_core_web_md "
                           f"(silver) and {len(tweets)} WNUT-16 tweets (gold, types mapped "
                           "to CoNLL's)")


def ner_real_scenario() -> Scenario:
    return Scenario(
        name="nlp.ner_real",
        description="text -> named entities, trained on the templates plus real text "
                    "(silver news, WNUT-16 tweets)",
        default_spec=REAL_SPEC,
        load_demo=load_real_demo,
        quick_overrides=["train.epochs=1"],
        quick_records=48,
        primary_input="text",
        baselines={"memorised names (CoNLL baseline)": memorised_baseline},
        extra_tests={REAL_TEST: real_test},
    )


def export_hf(predictor: Any, out_dir: str | Path) -> Path:
    """A trained nlp.ner model (``polymodal.load``) as a plain transformers
    ``AutoModelForTokenClassification`` folder (same weights, ``id2label`` = the BIO tags),
    for tools that expect one, e.g. ``pipeline("token-classification")``."""
    from transformers import AutoModelForTokenClassification

    model = predictor.model
    encoder = model.encoders[model.fusion.token_field]
    tags = model.task.tags
    encoder_model = encoder.model
    config = encoder_model.config.__class__.from_dict(encoder_model.config.to_dict())
    config.id2label = dict(enumerate(tags))
    config.label2id = {t: i for i, t in enumerate(tags)}
    config.num_labels = len(tags)
    hf = AutoModelForTokenClassification.from_config(config)
    base = getattr(hf, hf.base_model_prefix)
    missing, unexpected = base.load_state_dict(encoder_model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise RuntimeError(f"encoder weights do not fit {type(hf).__name__}")
    hf.classifier.load_state_dict(model.head[-1].state_dict())
    out = Path(out_dir)
    hf.save_pretrained(str(out), safe_serialization=True)
    encoder.processor.tokenizer.save_pretrained(str(out))
    return out
