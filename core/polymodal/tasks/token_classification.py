"""``token-classification``: labelled character spans of a text (named entities, PII,
skills ...) by BIO tagging of the fused token sequence.

The target is a list of spans ``{"start", "end", "label"}`` (character offsets into the
text of the token field). Alignment comes from the token field's processor
(``with_alignment``: character offsets and word ids per token): the first sub-token of each
word is trained on the word's B-/I-/O tag, the other sub-tokens are ignored; predictions are
read off first sub-tokens and joined into spans ``{"text", "label", "start", "end",
"score"}`` in the caller's string. Metrics: exact-span precision, recall and F1, micro and
per type (CoNLL's definition), as a torchmetrics ``Metric`` (summed across ranks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from polymodal.component_options import TokenClassificationOptions
from polymodal.distributed import mean_over_ranks
from polymodal.errors import DataError
from polymodal.fusions import FusedDims
from polymodal.options import parse_options
from polymodal.records import Record
from polymodal.spec import TaskSpec
from polymodal.tasks.base import Batch, Task

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

IGNORE = -100
Span = tuple[int, int, str]


def check_spans(spans: Any, text: Any, index: int) -> list[Record]:
    """A record's gold spans, or a one-line DataError naming the record."""
    if spans is None:
        raise DataError(f"record {index}: no entities list (give [] for none)")
    if not isinstance(spans, list):
        raise DataError(f"record {index}: entities must be a list of {{start, end, label}}")
    length = len(text) if isinstance(text, str) else 0
    for span in spans:
        try:
            start, end, label = int(span["start"]), int(span["end"]), span["label"]
        except (KeyError, TypeError, ValueError):
            raise DataError(f"record {index}: each entity needs start, end and label"
                            ) from None
        if not 0 <= start < end <= length or not label:
            raise DataError(f"record {index}: entity span {start}-{end} is outside the text "
                            f"({length} characters)")
    return spans


def score_spans(gold: list[list[Record]], predicted: list[list[Record]]) -> dict[str, Any]:
    """Exact-span precision/recall/F1 (micro and per type) of span lists, as the task's
    metrics report them: for baselines and tools outside a model."""
    def spans(records: list[Record]) -> set[Span]:
        return {(int(s["start"]), int(s["end"]), str(s["label"])) for s in records}

    from polymodal.tasks.task_metrics import SpanScores

    types = sorted({str(s["label"]) for rows in (gold, predicted) for r in rows for s in r})
    metric = SpanScores(types)
    metric.update([spans(p) for p in predicted], [spans(g) for g in gold])
    return {**metric.compute(), "n": len(gold)}


def word_tags(spans: list[Record], offsets: list[list[int]], word_ids: list[int],
              index: dict[str, int]) -> list[int]:
    """Tag ids per token: B-/I-/O for the first sub-token of each word by where the word
    starts relative to the gold spans; IGNORE for everything else."""
    labels = [IGNORE] * len(word_ids)
    previous = -1
    for position, word in enumerate(word_ids):
        if word < 0 or word == previous:
            continue
        previous = word
        start = offsets[position][0]
        tag = "O"
        for span in spans:
            if int(span["start"]) <= start < int(span["end"]):
                prefix = "B" if start == int(span["start"]) else "I"
                tag = f"{prefix}-{span['label']}"
                break
        labels[position] = index.get(tag, 0)
    return labels


def join_words(words: list[tuple[int, int, str, float]]) -> list[dict[str, Any]]:
    """Word tags (start, end, tag, probability) -> spans with a mean probability. An I- tag
    that does not continue a span of its type starts one."""
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for start, end, tag, prob in words:
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current["label"] == label:
            current["end"], current["probs"] = end, current["probs"] + [prob]
            continue
        if current is not None:
            spans.append(current)
            current = None
        if prefix in ("B", "I"):
            current = {"label": label, "start": start, "end": end, "probs": [prob]}
    if current is not None:
        spans.append(current)
    return [{"label": s["label"], "start": s["start"], "end": s["end"],
             "score": round(sum(s["probs"]) / len(s["probs"]), 4)} for s in spans]


class TokenClassificationTask(Task):
    monitor = "f1"
    reads = "tokens"
    needs_alignment = True
    Options = TokenClassificationOptions

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.options = parse_options(self.Options, spec.options, "task.options",
                                     f"task {spec.name!r}")
        self.types: list[str] = []

    @property
    def tags(self) -> list[str]:
        return ["O"] + [f"{prefix}-{t}" for t in self.types for prefix in ("B", "I")]

    @property
    def labels(self) -> list[str]:
        return self.types

    @property
    def output_dim(self) -> int:  # type: ignore[override]
        return len(self.tags)

    def fit(self, targets: list[Any]) -> None:
        for i, spans in enumerate(targets):
            if not isinstance(spans, list):
                check_spans(spans, "", i)
        self.types = sorted({str(s["label"]) for spans in targets for s in spans
                             if isinstance(s, dict) and s.get("label")})
        if not self.types:
            raise DataError(f"target {self.spec.target!r}: the training data has no spans")

    def state(self) -> dict[str, Any]:
        return {"types": self.types}

    def load_state(self, state: dict[str, Any]) -> None:
        self.types = list(state["types"])

    def collate_targets(self, targets: list[Any], batch: Batch) -> dict[str, Any]:
        alignment, texts = batch["alignment"], batch["raw"]
        index = {t: i for i, t in enumerate(self.tags)}
        offsets, word_ids = alignment["offsets"].tolist(), alignment["word_ids"].tolist()
        rows, gold = [], []
        for i, (spans, text) in enumerate(zip(targets, texts, strict=True)):
            spans = check_spans(spans, text, i)
            unknown = sorted({s["label"] for s in spans} - set(self.types))
            if unknown:
                raise DataError(f"record {i}: span label(s) not seen in training: "
                                f"{', '.join(unknown[:5])}")
            rows.append(word_tags(spans, offsets[i], word_ids[i], index))
            gold.append([(int(s["start"]), int(s["end"]), str(s["label"])) for s in spans])
        return {"tags": torch.tensor(rows, dtype=torch.long), "spans": gold}

    def build_head(self, dims: FusedDims) -> nn.Module:
        return nn.Sequential(nn.Dropout(self.options.dropout),
                             nn.Linear(int(dims.tokens or 0), self.output_dim))

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        gold = batch["target"]["tags"][:, : outputs.shape[1]]
        logits = outputs[:, : gold.shape[1]].float()
        total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), gold.reshape(-1),
                                ignore_index=IGNORE, reduction="sum")
        # The mean over the tagged tokens of the global batch (all ranks), so N processes
        # train as one process does on the same global batch.
        return mean_over_ranks(total, (gold != IGNORE).sum())

    def metrics(self) -> MetricCollection:
        from torchmetrics import MetricCollection

        from polymodal.tasks.task_metrics import SpanScores

        return MetricCollection({"spans": SpanScores(self.types)})

    def update_metrics(self, metrics: MetricCollection, outputs: torch.Tensor,
                       batch: Batch) -> None:
        predicted = [{(s["start"], s["end"], s["label"]) for s in spans}
                     for spans in self._spans(outputs, batch)]
        metrics.update(predicted, [set(g) for g in batch["target"]["spans"]])

    def finalize_metrics(self, computed: dict[str, Any]) -> dict[str, Any]:
        return {k: (v if isinstance(v, dict) else float(v)) for k, v in computed.items()}

    def _spans(self, outputs: torch.Tensor, batch: Batch) -> list[list[dict[str, Any]]]:
        probs = torch.softmax(outputs.float(), dim=-1).cpu()
        best, top = probs.argmax(dim=-1).tolist(), probs.max(dim=-1).values.tolist()
        alignment = batch["alignment"]
        offsets, word_ids = alignment["offsets"].tolist(), alignment["word_ids"].tolist()
        tags = self.tags
        out = []
        for row in range(len(best)):
            words: dict[int, tuple[int, int, str, float]] = {}
            for position, word in enumerate(word_ids[row][: len(best[row])]):
                if word < 0:
                    continue
                start, end = offsets[row][position]
                seen = words.get(word)
                if seen is None:
                    words[word] = (start, end, tags[best[row][position]], top[row][position])
                elif start >= seen[0]:  # a later sub-token: the word extends to here
                    words[word] = (seen[0], max(seen[1], end), seen[2], seen[3])
            out.append(join_words([words[k] for k in sorted(words)]))
        return out

    def combine_windows(self, text: str, parts: list[tuple[dict[str, Any], int, int, int]]
                        ) -> dict[str, Any]:
        """Each window's entities shifted to ``text``; an entity belongs to the window whose
        trusted range holds its start, so one in an overlap is kept once."""
        entities = []
        for decoded, offset, core_start, core_end in parts:
            for entity in decoded["entities"]:
                start, end = entity["start"] + offset, entity["end"] + offset
                if core_start <= start < core_end:
                    entities.append({**entity, "text": text[start:end], "start": start,
                                     "end": end})
        return {"entities": entities}

    def decode(self, outputs: torch.Tensor, batch: Batch) -> list[dict[str, Any]]:
        texts = batch["raw"]
        return [{"entities": [{"text": str(text or "")[s["start"]:s["end"]], **s}
                              for s in spans]}
                for spans, text in zip(self._spans(outputs, batch), texts, strict=True)]
