"""NER on real text (issue 20).

``table``: entity F1 (micro, per type, per register) on the 115 hand-labelled real sentences
(polymodal_nlp/real_ner_sentences.txt) of spaCy's small and medium English pipelines (their
OntoNotes types mapped to CoNLL's, as nlp.ner_spacy does) and of our models: nlp.ner (the
project's template corpus) and nlp.ner_real (templates + silver news + WNUT-16 tweets).

``throughput``: sentences per second of one of our models (``polymodal.load(DIR).predict``,
batched, on the CPU) against spaCy's small pipeline (``nlp.pipe``, NER and the token vectors
it reads, as nlp.ner_spacy runs it) on the same 1,000 real news sentences (the Lee corpus),
run side by side; the ratio is ours / spaCy's.

Usage:
  python benchmarks/ner_real_text.py table --model templates=runs/ner --model real=runs/ner-real
  python benchmarks/ner_real_text.py throughput runs/ner-real [--sentences 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import timed


def _scores(gold: list[dict[str, Any]], predicted: list[list[dict[str, Any]]]
            ) -> dict[str, Any]:
    from polymodal.plugin import score_spans

    overall = score_spans([g["entities"] for g in gold], predicted)
    registers = sorted({g["register"] for g in gold})
    by_register = {}
    for register in registers:
        index = [i for i, g in enumerate(gold) if g["register"] == register]
        by_register[register] = score_spans([gold[i]["entities"] for i in index],
                                            [predicted[i] for i in index])["f1"]
    return {**overall, "registers": by_register}


def table(models: list[str]) -> None:
    import polymodal
    from polymodal_nlp.ner_real import (
        SPACY_MEDIUM,
        SPACY_SMALL,
        load_spacy_pipeline,
        real_sentences,
        spacy_entities,
    )

    gold = real_sentences()
    texts = [g["text"] for g in gold]
    rows: dict[str, dict[str, Any]] = {}
    for label, name in (("spaCy small", SPACY_SMALL), ("spaCy medium", SPACY_MEDIUM)):
        nlp = load_spacy_pipeline(name)
        rows[label] = _scores(gold, [spacy_entities(doc) for doc in nlp.pipe(texts)])
    for item in models:
        label, _, directory = item.partition("=")
        predictor = polymodal.load(directory, device="cpu")
        predictions = predictor.predict([{"text": t} for t in texts])
        rows[f"ours: {label}"] = _scores(gold, [p["entities"] for p in predictions])
    types = ["PER", "ORG", "LOC", "MISC"]
    registers = sorted(next(iter(rows.values()))["registers"])
    print("| model | micro-F1 | P | R | " + " | ".join(types) + " | "
          + " | ".join(registers) + " |")
    print("|---" * (4 + len(types) + len(registers)) + "|")
    for label, row in rows.items():
        per_type = [f"{row['per_type'].get(t, {}).get('f1', 0.0):.3f}" for t in types]
        per_register = [f"{row['registers'][r]:.3f}" for r in registers]
        print(f"| {label} | **{row['f1']:.3f}** | {row['precision']:.3f} | "
              f"{row['recall']:.3f} | " + " | ".join(per_type) + " | "
              + " | ".join(per_register) + " |")


def throughput(model: str, sentences: int, repeats: int, batch_size: int) -> None:
    import torch

    import polymodal
    from polymodal_nlp.ner_real import SPACY_SMALL, load_spacy_pipeline, silver_records

    records = [{"text": r["text"]} for r in silver_records(sentences, seed=1)]
    texts = [r["text"] for r in records]
    predictor = polymodal.load(model, device="cpu")
    nlp = load_spacy_pipeline(SPACY_SMALL)
    predictor.predict(records[:8])
    list(nlp.pipe(texts[:8]))
    ours = timed(lambda: predictor.predict(records, batch_size=batch_size), repeats,
                 warmup=False)
    theirs = timed(lambda: list(nlp.pipe(texts, batch_size=batch_size)), repeats,
                   warmup=False)
    print(f"{len(texts)} sentences, torch threads {torch.get_num_threads()}, "
          f"batch {batch_size}, median of {repeats}")
    print(f"ours ({model}): {len(texts) / ours:8.1f} sentences/s ({ours:.2f} s)")
    print(f"spaCy small:     {len(texts) / theirs:8.1f} sentences/s ({theirs:.2f} s)")
    print(f"ratio ours / spaCy small: {theirs / ours:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    scores = commands.add_parser("table")
    scores.add_argument("--model", action="append", default=[],
                        help="LABEL=MODEL_DIR of an nlp.ner model (repeatable)")
    speed = commands.add_parser("throughput")
    speed.add_argument("model")
    speed.add_argument("--sentences", type=int, default=1000)
    speed.add_argument("--repeats", type=int, default=3)
    speed.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if args.command == "table":
        table(args.model)
    else:
        throughput(args.model, args.sentences, args.repeats, args.batch_size)


if __name__ == "__main__":
    main()
