"""``nlp.qa``: extractive question answering. A start/end head over the tokens of a
registered text encoder reading ``question [SEP] context``; contexts longer than the window
are read in overlapping windows; the best span over all windows is mapped back to the
context string, or "no answer" (``""``) when the null span (the first token) scores
higher, SQuAD 2.0 style. Metrics: exact match and token F1 with SQuAD's normalisation."""

from __future__ import annotations

import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from polymodal.plugin import DataError, ExportGraph, NamedInputs, Record, WindowedPredictor
from polymodal_nlp.token_model import (
    TokenHeadModel,
    TokenSpec,
    load_token_model,
    new_token_model,
    save_token_model,
    spec_windows,
)

LABELS = ["start", "end"]
MAX_ANSWER_TOKENS = 30
EXPORT_EXAMPLES = [{"question": "Where is the mill?", "context": "The mill is by the river."},
                   {"question": "Who founded the town library, and when?",
                    "context": "Ada Reyes founded the town library in 1921, two years after "
                               "the bridge over the river was built."}]


# --- SQuAD normalisation and metrics ---------------------------------------------------

def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD's evaluation)."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truths: list[str]) -> float:
    truths = truths or [""]
    return float(max(normalize_answer(prediction) == normalize_answer(t) for t in truths))


def token_f1(prediction: str, truths: list[str]) -> float:
    def one(truth: str) -> float:
        predicted, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
        if not predicted or not gold:
            return float(predicted == gold)
        common = sum((Counter(predicted) & Counter(gold)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(predicted), common / len(gold)
        return 2 * precision * recall / (precision + recall)

    return max(one(t) for t in (truths or [""]))


def qa_scores(records: list[Record], predictions: list[str]) -> dict[str, Any]:
    truths = [[a["text"] for a in r["answers"]] for r in records]
    em = [exact_match(p, t) for p, t in zip(predictions, truths, strict=True)]
    f1 = [token_f1(p, t) for p, t in zip(predictions, truths, strict=True)]
    has = [bool(t) for t in truths]

    def mean(values: list[float], keep: list[bool]) -> float | None:
        chosen = [v for v, k in zip(values, keep, strict=True) if k]
        return sum(chosen) / len(chosen) if chosen else None

    out: dict[str, Any] = {"exact_match": mean(em, [True] * len(em)),
                           "f1": mean(f1, [True] * len(f1)), "n": len(records)}
    answerable, unanswerable = mean(f1, has), mean(em, [not h for h in has])
    if answerable is not None and unanswerable is not None:
        out["f1_has_answer"], out["accuracy_no_answer"] = answerable, unanswerable
    return out


# --- records -------------------------------------------------------------------------

def check_records(records: list[Record], *, labelled: bool) -> list[Record]:
    """Flat records ``{context, question[, answers]}``; a labelled answer must occur in its
    context at ``answer_start`` (found by search when the start is not given)."""
    from polymodal_nlp.formats import qa_records

    records = qa_records(records)
    out = []
    for index, record in enumerate(records):
        for key in ("context", "question"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise DataError(f"record {index}: \"{key}\" is empty or missing")
        if not labelled:
            out.append(record)
            continue
        answers = record.get("answers")
        if answers is None and "answer" in record:  # flat JSONL: {"answer": "..."}
            answers = [{"text": record["answer"]}] if record["answer"] else []
        if not isinstance(answers, list):
            raise DataError(f"record {index}: \"answers\" must be a list of {{text, "
                            "answer_start}} (empty for no answer)")
        fixed = []
        for answer in answers:
            text, start = answer.get("text"), answer.get("answer_start")
            if not isinstance(text, str) or not text:
                raise DataError(f"record {index}: an answer has no text")
            if start is None:
                start = record["context"].find(text)
            if start < 0 or record["context"][start:start + len(text)] != text:
                raise DataError(f"record {index}: the answer {text!r} is not in its context"
                                + (f" at {answer.get('answer_start')}"
                                   if answer.get("answer_start") is not None else ""))
            fixed.append({"text": text, "answer_start": int(start)})
        out.append({**record, "answers": fixed})
    return out


def span_targets(encoding: Any, records: list[Record]) -> dict[str, torch.Tensor]:
    """Start/end token per window: the first answer's tokens when the window holds the
    whole answer, else the first token (no answer in this window)."""
    starts, ends = [], []
    for window, example in enumerate(encoding["overflow_to_sample_mapping"].tolist()):
        answers = records[example]["answers"]
        start_token = end_token = 0
        if answers:
            first, last = answers[0]["answer_start"], answers[0]["answer_start"] + len(
                answers[0]["text"])
            sequence = encoding.sequence_ids(window)
            offsets = encoding["offset_mapping"][window].tolist()
            context = [i for i, s in enumerate(sequence) if s == 1]
            if context and offsets[context[0]][0] <= first and offsets[context[-1]][1] >= last:
                start_token = next(i for i in context if offsets[i][1] > first)
                end_token = next(i for i in reversed(context) if offsets[i][0] < last)
        starts.append(start_token)
        ends.append(end_token)
    return {"start": torch.tensor(starts), "end": torch.tensor(ends)}


# --- model ---------------------------------------------------------------------------

class Reader(WindowedPredictor):
    """A trained QA model (what ``polymodal.load`` returns for an nlp.qa directory): each
    question + context pair is read in overlapping windows of the context; the best span of
    all windows wins unless the null span (the first token) of some window scores higher."""

    scenario = "nlp.qa"

    def __init__(self, spec: TokenSpec, model: TokenHeadModel, device: torch.device,
                 manifest: dict[str, Any] | None = None, precision: str = "fp32") -> None:
        super().__init__(model, device, precision, manifest)
        self.spec, self.model = spec, model
        self.tokenizer = model.encoder.processor.tokenizer

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": n, "modality": "text", "encoder": self.spec.text.encoder}
                for n in ("question", "context")]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "extractive-qa", "target": "answer"}

    def predict(self, records: list[Record], batch_size: int = 64) -> list[Record]:
        return super().predict(check_records(records, labelled=False), batch_size)

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        return check_records(records, labelled=True)

    def score(self, records: list[Record], predictions: list[Record]) -> dict[str, Any]:
        return qa_scores(records, [p["answer"] for p in predictions])

    def windows(self, record: Record) -> list[dict[str, torch.Tensor]]:
        encoding = spec_windows(self.spec, self.tokenizer, [record["context"]],
                                [record["question"]])
        out = []
        for window in range(len(encoding["input_ids"])):
            length = int(encoding["attention_mask"][window].sum())
            unit = {k: encoding[k][window][:length]
                    for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoding}
            unit["offsets"] = encoding["offset_mapping"][window][:length]
            unit["context"] = torch.tensor([s == 1 for s in
                                            encoding.sequence_ids(window)[:length]])
            out.append(unit)
        return out

    def batches(self, records: list[Any], batch_size: int) -> list[list[int]]:
        order = sorted(range(len(records)), key=lambda i: len(records[i]["input_ids"]))
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def preprocess(self, records: list[Any]) -> dict[str, torch.Tensor]:
        from torch.nn.utils.rnn import pad_sequence

        pad = self.tokenizer.pad_token_id or 0
        return {k: pad_sequence([w[k] for w in records], batch_first=True,
                                padding_value=pad if k == "input_ids" else 0)
                for k in ("input_ids", "attention_mask", "token_type_ids") if k in records[0]}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch)

    def postprocess(self, outputs: torch.Tensor, batch: Any, records: list[Any]
                    ) -> list[Record]:
        """Per window: its best span (start <= end < start + MAX_ANSWER_TOKENS, inside the
        context) with its score and character range, and its null score."""
        logits = outputs.float().cpu()
        out = []
        for row, window in enumerate(records):
            length = len(window["input_ids"])
            start_logits, end_logits = logits[row, :length, 0], logits[row, :length, 1]
            context = window["context"]
            scores = (start_logits.masked_fill(~context, float("-inf"))[:, None]
                      + end_logits.masked_fill(~context, float("-inf"))[None, :])
            position = torch.arange(length)
            allowed = (position[None, :] >= position[:, None]) & (
                position[None, :] - position[:, None] < MAX_ANSWER_TOKENS)
            scores = scores.masked_fill(~allowed, float("-inf"))
            flat = int(scores.argmax())
            first, last = divmod(flat, length)
            offsets = window["offsets"].tolist()
            out.append({"score": float(scores.flatten()[flat]),
                        "null": float(start_logits[0] + end_logits[0]),
                        "start": offsets[first][0], "end": offsets[last][1]})
        return out

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """Token ids (+ mask, type ids) of question + context windows -> start/end logits
        [B, T, 2]; windowing and span decoding stay with the runtime."""
        examples = check_records(records or EXPORT_EXAMPLES, labelled=False)
        units = [w for r in examples for w in self.windows(r)]
        if len(units) < 2:
            raise DataError("export needs at least two question + context windows")
        trace, check = self.preprocess(units[:1]), self.preprocess(units)
        return ExportGraph(module=NamedInputs(self.model, list(trace)), inputs=list(trace),
                           outputs=["logits"], trace=list(trace.values()),
                           check=list(check.values()),
                           sidecar={"task": "extractive-qa", "labels": LABELS,
                                    "max_answer_tokens": MAX_ANSWER_TOKENS})

    def combine(self, record: Record, results: list[Record], windows: list[Any]) -> Record:
        best = max(results, key=lambda r: r["score"])
        null = min(r["null"] for r in results)
        if null > best["score"]:
            return {"answer": "", "start": None, "score": round(null, 4), "no_answer": True}
        return {"answer": record["context"][best["start"]:best["end"]],
                "start": best["start"], "score": round(best["score"], 4), "no_answer": False}


STOPWORDS = {"the", "a", "an", "of", "in", "is", "was", "what", "which", "who", "when",
             "where", "how", "does", "do", "did", "are", "for", "to", "by", "it", "its", "and",
             "many", "much", "year"}


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group().lower(), m.start(), m.end())
            for m in re.finditer(r"\w+(?:[,'-]\w+)*", text)]


def lexical_answer(question: str, context: str, window: int = 6, max_words: int = 3) -> str:
    """The sliding-window baseline: candidate answers are runs of up to ``max_words``
    context words that are neither question words nor stopwords (the longest run at each
    start); a candidate scores the question words within ``window`` words of it, each
    weighted by 1 / distance; the best candidate wins."""
    asked = {w for w, _, _ in _words(question)} - STOPWORDS
    words = _words(context)
    best, answer = 0.0, ""
    for i in range(len(words)):
        run = []
        for word in words[i:i + max_words]:
            if word[0] in asked or word[0] in STOPWORDS:
                break
            run.append(word)
        if not run:
            continue
        end = i + len(run)
        score = sum(1 / (i - j) for j in range(max(0, i - window), i)
                    if words[j][0] in asked)
        score += sum(1 / (j - end + 1) for j in range(end, min(len(words), end + window))
                     if words[j][0] in asked)
        if score > best:
            best, answer = score, context[run[0][1]:run[-1][2]]
    return answer


def lexical_baseline(records: list[Record]) -> dict[str, Any]:
    return qa_scores(records, [lexical_answer(r["question"], r["context"]) for r in records])


def train_qa(spec: TokenSpec, train: list[Record], test: list[Record] | None, out_dir: Path,
             device: str | None = None, progress: bool = True,
             resume: bool = False, real_text: bool = True) -> dict[str, Any]:
    """Fit the span head over question + context windows with the core Trainer and write
    the model directory (the lexical baseline beside the model in metrics and report, on
    the held-out records and, with ``real_text``, on the hand-written real-text set: every
    run but a quick one, as the core scores a spec scenario's ``extra_tests``)."""
    from polymodal.plugin import fit_steps, training_directory, write_run_files
    from polymodal_nlp.qa_corpus import real_text_records
    from polymodal_nlp.token_model import window_steps

    train = check_records(train, labelled=True)
    test = check_records(test, labelled=True) if test else None
    torch_device, model = new_token_model(spec, len(LABELS), device)
    encoding = spec_windows(spec, model.encoder.processor.tokenizer,
                            [r["context"] for r in train], [r["question"] for r in train])
    targets = span_targets(encoding, train)

    def loss_fn(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return 0.5 * (F.cross_entropy(logits[:, :, 0], batch["start"])
                      + F.cross_entropy(logits[:, :, 1], batch["end"]))

    steps, windows = window_steps(model, encoding, targets, loss_fn, spec)
    with training_directory(out_dir, resume=resume,
                            keep_checkpoint=spec.train.keep_checkpoint) as work:
        result = fit_steps(spec.train, steps, windows, [], work, device=torch_device,
                           resume=resume, progress=progress)
        reader = Reader(spec, model.eval(), torch_device)
        metrics: dict[str, Any] = {"train_questions": len(train)}
        comparisons = {}
        if test:
            metrics["test"] = reader.evaluate(test)
            metrics["baselines"] = {"sliding-window word overlap": lexical_baseline(test)}
            comparisons["held-out: model and baselines"] = {"model": metrics["test"],
                                                            **metrics["baselines"]}
        if real_text:
            real = real_text_records()
            metrics["real_text"] = reader.evaluate(real)
            metrics["real_text_baselines"] = {
                "sliding-window word overlap": lexical_baseline(real)}
            comparisons["real text (hand-written, 20 news paragraphs)"] = {
                "model": metrics["real_text"], **metrics["real_text_baselines"]}
        spec_data = save_token_model(work, model, spec, LABELS)
        write_run_files(work, kind="qa", spec=spec_data, metrics=metrics, result=result,
                        train_records=train, comparisons=comparisons)
    return {"best_epoch": result.best_epoch, **metrics}


def load_reader(directory: str | Path, device: str | None = None,
                precision: str = "fp32") -> Reader:
    spec, model, _, manifest, torch_device = load_token_model(Path(directory), device)
    return Reader(spec, model, torch_device, manifest, precision)
