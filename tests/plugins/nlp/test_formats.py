"""NLP readers and metrics: CoNLL and SQuAD files, BIO <-> spans, entity scores, SQuAD
exact match / F1 (checked against torchmetrics), the embedded corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.data.readers import read_records
from polymodal.errors import DataError

CONLL = """-DOCSTART- -X- O O

Maria NNP B-PER
Lopez NNP I-PER
joined VBD O
Acme NNP B-ORG
Robotics NNP I-ORG
in IN O
Paris NNP B-LOC
. . O

Hello UH O
"""


def test_conll_reader_gives_character_spans(tmp_path: Path) -> None:
    path = tmp_path / "train.conll"
    path.write_text(CONLL)
    records = read_records(path)  # chosen by extension through the registry
    assert len(records) == 2
    first = records[0]
    assert first["text"] == "Maria Lopez joined Acme Robotics in Paris ."
    spans = [(first["text"][e["start"]:e["end"]], e["label"]) for e in first["entities"]]
    assert spans == [("Maria Lopez", "PER"), ("Acme Robotics", "ORG"), ("Paris", "LOC")]
    assert records[1]["entities"] == []


def test_conll_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.conll"
    path.write_text("Maria B-PER\nLopez I-PER\nbroken\n")
    with pytest.raises(DataError, match=r"bad\.conll:3: expected 'token \.\.\. tag'"):
        read_records(path)
    path.write_text("Maria B-PER\nLopez X-PER\n")
    with pytest.raises(DataError, match=r"bad\.conll:2: tag 'X-PER'"):
        read_records(path)


def test_non_utf8_files_are_refused_with_their_name(tmp_path: Path) -> None:
    for name in ("latin1.conll", "latin1.jsonl", "latin1.csv"):
        path = tmp_path / name
        path.write_bytes("caf\xe9 O\n".encode("latin-1") if name.endswith("conll")
                         else b'{"text": "caf\xe9"}\n' if name.endswith("jsonl")
                         else b"text,label\ncaf\xe9,a\n")
        with pytest.raises(DataError, match=rf"{name}.*(?i:utf-8)"):
            read_records(path)


def test_conll_round_trip(tmp_path: Path) -> None:
    from polymodal_nlp.formats import write_conll
    from polymodal_nlp.ner_corpus import corpus

    train, _ = corpus(train_size=30, test_size=0)
    path = tmp_path / "round.conll"
    write_conll(train, path)
    back = read_records(path)
    assert len(back) == len(train)
    for original, read in zip(train, back, strict=True):
        assert [read["text"][e["start"]:e["end"]] for e in read["entities"]] == \
            [original["text"][e["start"]:e["end"]] for e in original["entities"]]


def test_squad_file_flattens_to_questions(tmp_path: Path) -> None:
    from polymodal_nlp.formats import qa_records

    squad = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{
        "context": "Oslo is the capital of Norway.",
        "qas": [{"id": "1", "question": "What is the capital of Norway?",
                 "answers": [{"text": "Oslo", "answer_start": 0}]},
                {"id": "2", "question": "Who is the king?", "answers": [],
                 "is_impossible": True}]}]}]}
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(squad))
    records = qa_records(read_records(path))
    assert [r["id"] for r in records] == ["1", "2"]
    assert records[0]["answers"] == [{"text": "Oslo", "answer_start": 0}]
    assert records[1]["is_impossible"] and records[1]["answers"] == []


def test_answer_outside_its_context_is_refused() -> None:
    from polymodal_nlp.qa import check_records

    good = {"context": "Oslo is in Norway.", "question": "Where is Oslo?",
            "answers": [{"text": "Norway", "answer_start": 11}]}
    assert check_records([good], labelled=True)[0]["answers"][0]["answer_start"] == 11
    with pytest.raises(DataError, match="record 0: the answer 'Sweden' is not in its context"):
        check_records([{**good, "answers": [{"text": "Sweden"}]}], labelled=True)
    with pytest.raises(DataError, match="record 0: the answer 'Norway' is not in its context "
                                        "at 3"):
        check_records([{**good, "answers": [{"text": "Norway", "answer_start": 3}]}],
                      labelled=True)
    with pytest.raises(DataError, match='record 0: "context" is empty'):
        check_records([{**good, "context": "  "}], labelled=False)


def test_squad_metrics_equal_torchmetrics() -> None:
    from torchmetrics.text import SQuAD

    from polymodal_nlp.qa import exact_match, token_f1

    cases = [("The Eiffel Tower", ["Eiffel Tower"]), ("in 1889", ["1889"]),
             ("Paris, France", ["Paris"]), ("a red apple", ["the red apple", "apple"]),
             ("nothing", ["something else"])]
    for i, (prediction, truths) in enumerate(cases):
        reference = SQuAD()(
            [{"prediction_text": prediction, "id": str(i)}],
            [{"answers": {"answer_start": [0] * len(truths), "text": truths}, "id": str(i)}])
        assert exact_match(prediction, truths) * 100 == pytest.approx(
            float(reference["exact_match"]))
        assert token_f1(prediction, truths) * 100 == pytest.approx(float(reference["f1"]))
    assert exact_match("", []) == 1.0 and token_f1("Oslo", []) == 0.0  # no-answer questions


def test_embedded_corpora_are_big_enough_and_consistent() -> None:
    from polymodal_nlp.ner_corpus import corpus as ner_corpus
    from polymodal_nlp.qa_corpus import corpus as qa_corpus
    from polymodal_nlp.search_corpus import documents, queries

    train, test = ner_corpus()
    assert len(train) + len(test) >= 400
    train_names = {r["text"][e["start"]:e["end"]] for r in train for e in r["entities"]}
    test_names = {r["text"][e["start"]:e["end"]] for r in test for e in r["entities"]}
    assert not train_names & test_names  # the test names are unseen
    assert {e["label"] for r in train for e in r["entities"]} == {"PER", "ORG", "LOC", "MISC"}
    qa_train, qa_test = qa_corpus()
    assert len(qa_train) + len(qa_test) >= 300
    assert len({r["context"] for r in qa_train + qa_test}) >= 60
    assert not {r["context"] for r in qa_train} & {r["context"] for r in qa_test}
    for r in qa_train + qa_test:
        for a in r["answers"]:
            assert r["context"][a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"]
    assert any(not r["answers"] for r in qa_test)  # "no answer" questions are asked
    ids = {d["id"] for d in documents()}
    assert len(ids) >= 200 and all(q["id"] in ids for q in queries())
