"""The token-level task contract: targets aligned with sub-word tokens, spans decoded back
into the caller's string, exact-span scores, and the refusals a user meets first."""

from __future__ import annotations

import pytest
import torch

from polymodal.data.collate import move_batch
from polymodal.spec import TaskSpec
from polymodal.tasks.token_classification import (
    IGNORE,
    TokenClassificationTask,
    join_words,
    score_spans,
)


def test_words_join_into_spans_and_partial_spans_score_as_wrong() -> None:
    words = [(0, 3, "B-PER", 0.9), (4, 9, "I-PER", 0.7), (10, 17, "O", 0.99),
             (18, 22, "I-LOC", 0.8)]  # an I- without a B- starts a span
    spans = join_words(words)
    assert [(s["label"], s["start"], s["end"]) for s in spans] == [
        ("PER", 0, 9), ("LOC", 18, 22)]
    assert spans[0]["score"] == pytest.approx(0.8)
    gold = [[{"start": 0, "end": 9, "label": "PER"}, {"start": 18, "end": 22, "label": "LOC"}]]
    predicted = [[{"start": 0, "end": 3, "label": "PER"},
                  {"start": 18, "end": 22, "label": "LOC"}]]
    scores = score_spans(gold, predicted)
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5
    assert scores["per_type"]["LOC"]["f1"] == 1.0 and scores["per_type"]["PER"]["f1"] == 0.0


def _task_and_batch() -> tuple[TokenClassificationTask, dict]:
    from transformers import AutoTokenizer

    from polymodal_nlp.text_encoders import TextProcessor, minilm_path

    task = TokenClassificationTask(TaskSpec(name="token-classification", target="entities"))
    task.fit([[{"start": 0, "end": 9, "label": "PER"}], [{"start": 0, "end": 4,
                                                         "label": "LOC"}]])
    processor = TextProcessor(AutoTokenizer.from_pretrained(str(minilm_path())), 32, "head")
    texts = ["Ana Silvaberg visited Lima", "Oslo"]
    inputs, alignment = processor.with_alignment(texts)
    batch = {"inputs": {"text": inputs}, "alignment": alignment, "raw": texts,
             "present": {"text": torch.tensor([True, True])}}
    gold = [[{"start": 0, "end": 13, "label": "PER"}, {"start": 22, "end": 26, "label": "LOC"}],
            [{"start": 0, "end": 4, "label": "LOC"}]]
    batch["target"] = task.collate_targets(gold, batch)
    return task, batch


def test_targets_tag_the_first_sub_token_of_each_word() -> None:
    task, batch = _task_and_batch()
    tags, word_ids = batch["target"]["tags"][0].tolist(), batch["alignment"]["word_ids"][0]
    named = [task.tags[t] for t in tags if t != IGNORE]
    assert named == ["B-PER", "I-PER", "O", "B-LOC"]  # Ana / Silvaberg / visited / Lima
    # "Silvaberg" is several sub-tokens: only the first carries a tag.
    silva = [i for i, w in enumerate(word_ids.tolist()) if w == 1]
    assert len(silva) > 1 and [tags[i] for i in silva[1:]] == [IGNORE] * (len(silva) - 1)
    assert batch["target"]["spans"][1] == [(0, 4, "LOC")]


def test_decoding_gold_logits_gives_back_the_gold_spans_exactly() -> None:
    task, batch = _task_and_batch()
    tags = batch["target"]["tags"]
    logits = torch.full((*tags.shape, task.output_dim), -5.0)
    for row, col in zip(*torch.nonzero(tags != IGNORE, as_tuple=True), strict=True):
        logits[row, col, tags[row, col]] = 5.0
    logits[tags == IGNORE, 0] = 5.0
    decoded = task.decode(logits, batch)
    assert [(e["text"], e["label"]) for e in decoded[0]["entities"]] == [
        ("Ana Silvaberg", "PER"), ("Lima", "LOC")]
    metrics = task.metrics()
    task.update_metrics(metrics, logits, move_batch(batch, torch.device("cpu")))
    assert task.finalize_metrics(metrics.compute())["f1"] == 1.0
    assert float(task.loss(logits, batch)) < 1e-3


def test_long_texts_are_cut_into_overlapping_windows_between_words() -> None:
    from transformers import AutoTokenizer

    from polymodal_nlp.text_encoders import TextProcessor, minilm_path

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    processor = TextProcessor(tokenizer, 16, "head")
    assert processor.windows("Ana visited Lima") == [(0, 16)]
    text = " ".join(f"Silvaberg{i} visited Lima" for i in range(12))
    windows = processor.windows(text)
    assert len(windows) > 3 and windows[0][0] == 0 and windows[-1][1] == len(text)
    for (start, end), (following, _) in zip(windows, windows[1:], strict=False):
        assert start < following < end  # each overlaps the next and moves on
    for start, end in windows:
        assert start == 0 or text[start - 1] == " "  # never inside a word
        assert end == len(text) or text[end] == " "
        assert len(tokenizer(text[start:end])["input_ids"]) <= 16


def test_window_results_are_joined_once_each() -> None:
    task, _ = _task_and_batch()
    text = "Ana visited Lima and Oslo"
    first = {"entities": [{"label": "PER", "start": 0, "end": 3, "score": 0.9},
                          {"label": "LOC", "start": 12, "end": 16, "score": 0.8}]}
    second = {"entities": [{"label": "LOC", "start": 0, "end": 4, "score": 0.7},
                           {"label": "LOC", "start": 9, "end": 13, "score": 0.6}]}
    joined = task.combine_windows(text, [(first, 0, 0, 14), (second, 12, 14, len(text))])
    assert [(e["text"], e["start"]) for e in joined["entities"]] == [
        ("Ana", 0), ("Lima", 12), ("Oslo", 21)]


def test_bad_spans_are_refused_naming_the_record() -> None:
    from polymodal.errors import DataError

    task, batch = _task_and_batch()
    with pytest.raises(DataError, match="record 1: entity span 0-9 is outside the text"):
        task.collate_targets([[], [{"start": 0, "end": 9, "label": "LOC"}]], batch)
    with pytest.raises(DataError, match="record 0: span label.*ORG"):
        task.collate_targets([[{"start": 0, "end": 3, "label": "ORG"}], []], batch)


def test_a_processor_without_token_offsets_refuses_token_tasks() -> None:
    from polymodal.encoders.numeric import NumericProcessor
    from polymodal.errors import SpecError

    with pytest.raises(SpecError, match="no token offsets"):
        NumericProcessor(1).with_alignment([1.0])
