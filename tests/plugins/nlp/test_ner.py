"""nlp.ner end to end through the CLI on a slice of the embedded corpus: trains from a CoNLL
file, learns entities it never saw (names disjoint from training), predicts spans that are
exact substrings, evaluates any format by extension, refuses bad input without writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

FAST = ["--set", "train.epochs=3", "--set", "text.options.max_length=48",
        "--set", "train.lr=0.0002"]


@pytest.fixture(scope="module")
def ner_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from polymodal_nlp.formats import write_conll
    from polymodal_nlp.ner_corpus import corpus

    folder = tmp_path_factory.mktemp("ner-data")
    train, test = corpus(train_size=160, test_size=60)
    write_conll(train, folder / "train.conll")
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    write_conll(test, folder / "test.conll")
    return {"train": folder / "train.conll", "test": folder / "test.jsonl",
            "test_conll": folder / "test.conll"}


@pytest.fixture(scope="module")
def ner_model(ner_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ner") / "model"
    result = run_cli("nlp", "ner", "train", "--data", str(ner_files["train"]), "--test",
                     str(ner_files["test"]), "--out", str(out), *FAST, "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def test_learns_unseen_names(ner_model) -> None:  # type: ignore[no-untyped-def]
    out, summary = ner_model
    test, baseline = summary["test"], summary["baseline_memorised"]
    assert baseline["f1"] < 0.05  # the test names never occur in training
    assert test["f1"] > 0.6, test
    assert set(test["per_type"]) == {"PER", "ORG", "LOC", "MISC"}
    report = (out / "report.html").read_text()
    assert "memorised names" in report and "f1" in report


def test_predict_spans_are_exact_substrings(ner_model) -> None:  # type: ignore[no-untyped-def]
    out, _ = ner_model
    text = "Yesterday Ingrid Holm flew from Oslo to meet the board of Harbor Logistics."
    result = run_cli("nlp", "ner", "predict", str(out), text)
    assert result.returncode == 0, result.stderr
    entities = json.loads(result.stdout.splitlines()[0])["entities"]
    assert entities, "no entity found"
    for e in entities:
        assert text[e["start"]:e["end"]] == e["text"]
        assert e["label"] in {"PER", "ORG", "LOC", "MISC"} and 0 < e["score"] <= 1
    assert ("Ingrid Holm", "PER") in {(e["text"], e["label"]) for e in entities}


def test_evaluate_reads_conll_by_extension(ner_model, ner_files) -> None:  # type: ignore[no-untyped-def]
    out, summary = ner_model
    result = run_cli("evaluate", str(out), "--data", str(ner_files["test_conll"]), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert {"precision", "recall", "f1", "per_type"} <= set(metrics)
    assert metrics["n"] == 60 and metrics["f1"] > 0.5


def test_bad_input_is_refused_and_nothing_is_written(ner_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = ner_model
    empty = run_cli("nlp", "ner", "predict", str(out), "   ")
    assert empty.returncode == 2 and "\"text\" is empty" in empty.stderr
    bad = tmp_path / "bad.conll"
    bad.write_text("Maria B-PER\nLopez I-PER\n\njoined\n")
    target = tmp_path / "never"
    result = run_cli("nlp", "ner", "train", "--data", str(bad), "--out", str(target), *FAST)
    assert result.returncode == 2
    assert f"{bad}:4: expected 'token ... tag'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not target.exists() and not list(tmp_path.glob("never*"))


def test_exported_hf_model_gives_the_same_logits(ner_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForTokenClassification

    import polymodal
    from polymodal_nlp.ner import export_hf

    out, _ = ner_model
    tagger = polymodal.load(out, device="cpu")
    folder = export_hf(tagger, tmp_path / "hf")
    hf = AutoModelForTokenClassification.from_pretrained(str(folder)).eval()
    batch = tagger.tokenizer(["Ana Silva works at Nova Telecom in Lima."], return_tensors="pt")
    with torch.inference_mode():
        ours = tagger.model(dict(batch))
        theirs = hf(**batch).logits
    assert torch.allclose(ours, theirs, atol=1e-4)
    assert hf.config.id2label[0] == "O"
