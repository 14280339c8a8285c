"""``nlp.ner``: named entities as character spans, by BIO token classification over a
registered text encoder (``minilm`` by default).

Alignment: the tokenizer's words (its pre-tokenisation) carry the tags; a word's first
sub-token is trained on its tag, the other sub-tokens are ignored; predictions are read off
first sub-tokens and joined into spans ``{"text", "label", "start", "end", "score"}`` in
the caller's string. Long texts are cut into overlapping windows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from polymodal.errors import DataError
from polymodal.records import Record
from polymodal_nlp.token_model import (
    TokenHeadModel,
    TokenSpec,
    fit_windows,
    load_token_model,
    new_token_model,
    save_token_model,
    spec_windows,
    window_logits,
)

IGNORE = -100


def check_records(records: list[Record], *, labelled: bool) -> list[Record]:
    """Each record needs a non-empty ``text``; labelled ones a valid ``entities`` list."""
    for index, record in enumerate(records):
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"record {index}: \"text\" is empty or missing")
        if not labelled:
            continue
        entities = record.get("entities")
        if entities is None:
            raise DataError(f"record {index}: no \"entities\" list (give [] for none)")
        if not isinstance(entities, list):
            raise DataError(f"record {index}: \"entities\" must be a list of "
                            "{start, end, label}")
        for entity in entities:
            try:
                start, end, label = int(entity["start"]), int(entity["end"]), entity["label"]
            except (KeyError, TypeError, ValueError):
                raise DataError(f"record {index}: each entity needs start, end and label"
                                ) from None
            if not 0 <= start < end <= len(text) or not label:
                raise DataError(f"record {index}: entity span {start}-{end} is outside the "
                                f"text ({len(text)} characters)")
    return records


def tag_names(records: list[Record]) -> list[str]:
    types = sorted({e["label"] for r in records for e in r["entities"]})
    if not types:
        raise DataError("the training data has no entities")
    return ["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")]


def token_tags(encoding: Any, records: list[Record], tags: list[str]) -> torch.Tensor:
    """Tag ids per window token: the first sub-token of each word gets B-/I-/O by where the
    word starts relative to the gold spans; everything else is ignored by the loss."""
    index = {t: i for i, t in enumerate(tags)}
    width = encoding["input_ids"].shape[1]
    labels = torch.full((len(encoding["input_ids"]), width), IGNORE, dtype=torch.long)
    for window, example in enumerate(encoding["overflow_to_sample_mapping"].tolist()):
        spans = records[example]["entities"]
        previous = None
        for position, word in enumerate(encoding.word_ids(window)):
            if word is None or word == previous:
                previous = word if word is not None else previous
                continue
            previous = word
            start = int(encoding["offset_mapping"][window, position, 0])
            tag = "O"
            for span in spans:
                if int(span["start"]) <= start < int(span["end"]):
                    prefix = "B" if start == int(span["start"]) else "I"
                    tag = f"{prefix}-{span['label']}"
                    break
            labels[window, position] = index.get(tag, 0)
    return labels


def decode_words(words: list[tuple[int, int, str, float]], text: str) -> list[Record]:
    """Word tags (start, end, tag, probability) -> entity spans. An I- tag that does not
    continue a span of its type starts one."""
    entities: list[Record] = []
    current: dict[str, Any] | None = None
    for start, end, tag, prob in words:
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current["label"] == label:
            current["end"], current["probs"] = end, current["probs"] + [prob]
            continue
        if current is not None:
            entities.append(current)
            current = None
        if prefix in ("B", "I"):
            current = {"label": label, "start": start, "end": end, "probs": [prob]}
    if current is not None:
        entities.append(current)
    return [{"text": text[e["start"]:e["end"]], "label": e["label"], "start": e["start"],
             "end": e["end"], "score": round(sum(e["probs"]) / len(e["probs"]), 4)}
            for e in entities]


def entity_scores(gold: list[list[Record]], predicted: list[list[Record]]) -> dict[str, Any]:
    """Exact-span entity precision/recall/F1, micro and per type."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for gold_spans, predicted_spans in zip(gold, predicted, strict=True):
        g = {(int(e["start"]), int(e["end"]), e["label"]) for e in gold_spans}
        p = {(int(e["start"]), int(e["end"]), e["label"]) for e in predicted_spans}
        for span in g & p:
            counts[span[2]]["tp"] += 1
        for span in p - g:
            counts[span[2]]["fp"] += 1
        for span in g - p:
            counts[span[2]]["fn"] += 1

    def prf(c: Counter[str]) -> dict[str, float]:
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1}

    total = sum(counts.values(), Counter())
    return {**prf(total), "per_type": {t: {**prf(c), "support": c["tp"] + c["fn"]}
                                       for t, c in sorted(counts.items())},
            "n": len(gold)}


class Tagger:
    """A trained NER model (what ``polymodal.load`` returns for an nlp.ner directory)."""

    scenario = "nlp.ner"

    def __init__(self, spec: TokenSpec, model: TokenHeadModel, tags: list[str],
                 device: torch.device, manifest: dict[str, Any] | None = None) -> None:
        self.spec, self.model, self.tags, self.device = spec, model, tags, device
        self.manifest = manifest or {}
        self.tokenizer = model.encoder.processor.tokenizer

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "text", "modality": "text", "encoder": self.spec.text.encoder}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "entities", "target": "entities",
                "labels": sorted({t[2:] for t in self.tags if t != "O"})}

    def entities(self, texts: list[str], batch_size: int = 64) -> list[list[Record]]:
        encoding = spec_windows(self.spec, self.tokenizer, texts)
        logits = window_logits(self.model, encoding, self.device, batch_size)
        words: list[dict[int, tuple[int, int, str, float]]] = [{} for _ in texts]
        for window, example in enumerate(encoding["overflow_to_sample_mapping"].tolist()):
            probs = torch.softmax(logits[window], dim=-1)
            best = probs.argmax(dim=-1)
            offsets = encoding["offset_mapping"][window]
            for position, word in enumerate(encoding.word_ids(window)[: len(best)]):
                if word is None:
                    continue
                start, end = int(offsets[position, 0]), int(offsets[position, 1])
                seen = words[example].get(word)
                if seen is None:
                    tag = self.tags[int(best[position])]
                    words[example][word] = (start, end, tag, float(probs[position].max()))
                elif start >= seen[0]:  # a later sub-token: the word extends to here
                    words[example][word] = (seen[0], max(seen[1], end), seen[2], seen[3])
        return [decode_words([w[k] for k in sorted(w)], text)
                for w, text in zip(words, texts, strict=True)]

    def predict(self, records: list[Record], batch_size: int = 64) -> list[Record]:
        check_records(records, labelled=False)
        return [{"entities": spans} for spans in
                self.entities([r["text"] for r in records], batch_size)]

    def evaluate(self, records: list[Record], batch_size: int = 64) -> dict[str, Any]:
        from polymodal_nlp.formats import entity_records

        records = check_records(entity_records(records), labelled=True)
        predicted = self.entities([r["text"] for r in records], batch_size)
        return entity_scores([r["entities"] for r in records], predicted)


def memorised_baseline(train: list[Record], test: list[Record]) -> dict[str, Any]:
    """The CoNLL-2003 baseline: tag every occurrence of an entity string seen in training
    with its most frequent training label."""
    import re

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
    return entity_scores([r["entities"] for r in test], predicted)


def train_ner(spec: TokenSpec, train: list[Record], test: list[Record] | None,
              out_dir: Path, device: str | None = None, log: Any = None) -> dict[str, Any]:
    from polymodal_nlp.formats import entity_records

    train = check_records(entity_records(train), labelled=True)
    test = check_records(entity_records(test), labelled=True) if test else None
    tags = tag_names(train)
    torch_device, model = new_token_model(spec, len(tags), device)
    encoding = spec_windows(spec, model.encoder.processor.tokenizer,
                            [r["text"] for r in train])
    labels = token_tags(encoding, train, tags)

    def loss_fn(logits: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        gold = targets["tags"][:, : logits.shape[1]]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), gold.reshape(-1),
                               ignore_index=IGNORE)

    history = fit_windows(model, encoding, {"tags": labels}, loss_fn, spec, torch_device, log)
    tagger = Tagger(spec, model.eval(), tags, torch_device)
    metrics: dict[str, Any] = {"history": history, "train_sentences": len(train)}
    comparison = None
    if test:
        metrics["test"] = tagger.evaluate(test)
        metrics["baseline_memorised"] = memorised_baseline(train, test)
        comparison = {"model": metrics["test"], "memorised names (CoNLL baseline)":
                      metrics["baseline_memorised"]}
    save_token_model(Path(out_dir), model, spec, "ner", tags, metrics, comparison)
    return metrics


def load_tagger(directory: str | Path, device: str | None = None,
                precision: str = "fp32") -> Tagger:
    spec, model, tags, manifest, torch_device = load_token_model(Path(directory), device)
    return Tagger(spec, model, tags, torch_device, manifest)


def export_hf(tagger: Tagger, out_dir: str | Path) -> Path:
    """The tagger as a plain transformers ``AutoModelForTokenClassification`` folder (same
    weights, ``id2label`` = the BIO tags), for tools that expect one, e.g.
    ``pipeline("token-classification")``."""
    from transformers import AutoModelForTokenClassification

    encoder_model = tagger.model.encoder.model
    config = encoder_model.config.__class__.from_dict(encoder_model.config.to_dict())
    config.id2label = dict(enumerate(tagger.tags))
    config.label2id = {t: i for i, t in enumerate(tagger.tags)}
    config.num_labels = len(tagger.tags)
    model = AutoModelForTokenClassification.from_config(config)
    base = getattr(model, model.base_model_prefix)
    missing, unexpected = base.load_state_dict(encoder_model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise RuntimeError(f"encoder weights do not fit {type(model).__name__}")
    model.classifier.load_state_dict(tagger.model.head.state_dict())
    out = Path(out_dir)
    model.save_pretrained(str(out), safe_serialization=True)
    tagger.tokenizer.save_pretrained(str(out))
    return out
