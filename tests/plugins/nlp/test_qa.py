"""nlp.qa end to end through the CLI on a SQuAD v2.0 file written from the embedded corpus:
contexts longer than the window are read with a stride, the answer is a span of the
context, "no answer" is predicted, and the model beats the lexical baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

FAST = ["--set", "train.epochs=4", "--set", "text.options.max_length=96", "--set",
        "stride=32", "--set", "train.lr=0.0002"]


@pytest.fixture(scope="module")
def qa_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    from polymodal_nlp.qa_corpus import articles, squad_json

    folder = tmp_path_factory.mktemp("qa")
    items = squad_json(articles(towns=24, companies=16, seed=1))["data"]
    (folder / "train.json").write_text(json.dumps({"version": "v2.0", "data": items[:32]}))
    (folder / "dev.json").write_text(json.dumps({"version": "v2.0", "data": items[32:]}))
    out = folder / "model"
    result = run_cli("nlp", "qa", "train", "--data", str(folder / "train.json"), "--test",
                     str(folder / "dev.json"), "--out", str(out), *FAST, "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout), folder


def test_beats_the_lexical_baseline(qa_model) -> None:  # type: ignore[no-untyped-def]
    out, summary, _ = qa_model
    metrics = summary["metrics"]
    test = metrics["test"]
    baseline = metrics["baselines"]["sliding-window word overlap"]
    assert test["f1"] > baseline["f1"] + 0.10, (test, baseline)
    assert "sliding-window word overlap" in (out / "report.html").read_text()


def test_predicts_spans_of_the_context(qa_model) -> None:  # type: ignore[no-untyped-def]
    out, _, folder = qa_model
    context = ("Stonehaven lies in the north of Chile. Records show that Stonehaven was "
               "founded in 1702. The current mayor is Vera Lund. Its population is 12,400.")
    records = [{"context": context, "question": "Who is the mayor of Stonehaven?"},
               {"context": context, "question": "When was Stonehaven founded?"}]
    path = folder / "ask.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = run_cli("predict", str(out), "--input", str(path))
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["answer"] for a in answers] == ["Vera Lund", "1702"]
    for answer in answers:
        assert context[answer["start"]:answer["start"] + len(answer["answer"])] == \
            answer["answer"]


def test_evaluate_reads_squad_json(qa_model) -> None:  # type: ignore[no-untyped-def]
    out, summary, folder = qa_model
    result = run_cli("evaluate", str(out), "--data", str(folder / "dev.json"), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["exact_match"] == pytest.approx(summary["metrics"]["test"]["exact_match"])
    assert metrics["f1"] == pytest.approx(summary["metrics"]["test"]["f1"])
    assert "accuracy_no_answer" in metrics  # the dev file has unanswerable questions


def test_answer_missing_from_context_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"context": "Oslo is in Norway.", "question": "Where?",
                               "answers": [{"text": "Sweden", "answer_start": 0}]}) + "\n")
    result = run_cli("nlp", "qa", "train", "--data", str(bad), "--out", str(tmp_path / "m"),
                     *FAST)
    assert result.returncode == 2
    assert "the answer 'Sweden' is not in its context" in result.stderr
    assert not (tmp_path / "m").exists()


def test_every_full_run_reports_the_hand_written_real_text_set(qa_model) -> None:  # type: ignore[no-untyped-def]
    out, summary, _ = qa_model
    real = summary["metrics"]["real_text"]
    baseline = summary["metrics"]["real_text_baselines"]["sliding-window word overlap"]
    assert real["n"] == baseline["n"] == 94 and 0 <= real["f1"] <= 1
    assert "real text (hand-written" in (out / "report.html").read_text()


def test_the_real_text_answers_are_spans_of_their_paragraphs() -> None:
    from polymodal_nlp.qa_corpus import real_text_records

    records = real_text_records()
    assert len(records) >= 60 and len({r["context"] for r in records}) >= 15
    for record in records:
        for answer in record["answers"]:
            start = answer["answer_start"]
            assert record["context"][start:start + len(answer["text"])] == answer["text"]
        assert record["is_impossible"] == (not record["answers"])
    assert sum(not r["answers"] for r in records) == 7


def test_questions_are_generated_from_the_parse_of_real_sentences() -> None:
    pytest.importorskip("spacy")
    from polymodal_nlp.qa_real import load_spacy, paragraphs, questions_for

    doc = load_spacy()("Six midwives have been suspended at Wollongong Hospital. "
                       "The floods killed 108 people in Hunan last week.")
    (paragraph,) = paragraphs(doc)
    asked = {(q["question"], q["answers"][0]["text"]) for q in questions_for(paragraph)}
    assert asked >= {("How many midwives have been suspended at Wollongong Hospital?", "Six"),
                     ("Where have six midwives been suspended?", "Wollongong Hospital"),
                     ("How many people did the floods kill in Hunan last week?", "108"),
                     ("Where did the floods kill 108 people last week?", "Hunan"),
                     ("The floods killed 108 people where last week?", "Hunan")}
    for question in questions_for(paragraph):
        start, text = question["answers"][0]["answer_start"], question["answers"][0]["text"]
        assert paragraph.text[start:start + len(text)] == text


def test_questions_ask_who_a_described_person_is_and_of_one_clause_at_a_time() -> None:
    pytest.importorskip("spacy")
    from polymodal_nlp.qa_real import load_spacy, paragraphs, questions_for

    doc = load_spacy()("AMP chief executive Paul Batchelor says the result was solid. "
                       "US forces have captured 15 prisoners, but are not receiving useful "
                       "information from them. Mr Rudd met a man who knew Richard Reid.")
    (paragraph,) = paragraphs(doc)
    generated = questions_for(paragraph)
    asked = {(q["question"], q["answers"][0]["text"]) for q in generated}
    assert asked >= {("Who is the AMP chief executive?", "Paul Batchelor"),
                     ("How many prisoners have US forces captured?", "15")}
    # a relative clause has no subject of its own to ask about ("Who did who know?")
    assert not any("who know" in q["question"] for q in generated)


def test_the_real_text_training_set_asks_of_other_documents_too() -> None:
    pytest.importorskip("spacy")
    from polymodal_nlp.qa_real import build_records, lee_documents, load_spacy

    documents = lee_documents()
    assert len(documents) == 300
    records = build_records(documents[:12], load_spacy())
    unanswerable = [r for r in records if r["is_impossible"]]
    assert unanswerable and len(unanswerable) < len(records) / 4
    asked = {r["question"] for r in records if not r["is_impossible"]}
    assert all(r["question"] in asked for r in unanswerable)
    for record in records:
        for answer in record["answers"]:
            start = answer["answer_start"]
            assert record["context"][start:start + len(answer["text"])] == answer["text"]


@pytest.mark.slow
def test_the_default_reads_real_news_paragraphs(tmp_path: Path) -> None:
    """nlp.qa's default run (the template questions + the questions generated from the Lee
    corpus, two epochs: about 9 minutes on 2 cores): token F1 >= 0.60 on the hand-written
    real-text set (0.23 before real text was in the training set) and the template test
    split kept (0.992 before it)."""
    pytest.importorskip("spacy")
    result = run_cli("nlp", "qa", "train", "--out", str(tmp_path / "m"), "--json",
                     timeout=3600)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["real_text"]["f1"] >= 0.60
    assert metrics["real_text"]["f1"] > metrics["real_text_baselines"][
        "sliding-window word overlap"]["f1"] + 0.25
    assert metrics["test"]["f1"] >= 0.992 - 0.05
