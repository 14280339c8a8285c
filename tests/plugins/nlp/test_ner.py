"""nlp.ner end to end through the CLI on a slice of the embedded corpus: trains from a CoNLL
file, learns entities it never saw (names disjoint from training), predicts spans that are
exact substrings, evaluates any format by extension, refuses bad input without writing; and
the same model from a plain YAML spec with the core ``token-classification`` task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

FAST = ["--set", "train.epochs=3", "--set", "inputs.0.options.max_length=48",
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
    metrics = summary["metrics"]
    test = metrics["test"]
    baseline = metrics["baselines"]["memorised names (CoNLL baseline)"]
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


def test_a_text_longer_than_the_window_is_read_in_windows(ner_model) -> None:  # type: ignore[no-untyped-def]
    import polymodal

    out, _ = ner_model  # trained with max_length 48: the text below is ~10 windows
    sentence = "Yesterday Ingrid Holm flew from Oslo to meet the board of Harbor Logistics. "
    text = sentence * 12
    entities = polymodal.load(out).predict([{"text": text}])[0]["entities"]
    starts = [e["start"] for e in entities]
    assert len(starts) == len(set(starts)), "an entity in an overlap was kept twice"
    for e in entities:
        assert text[e["start"]:e["end"]] == e["text"]
    holm = [e["start"] for e in entities if (e["text"], e["label"]) == ("Ingrid Holm", "PER")]
    # Found in every repetition, the last ones far past the first window included.
    assert holm == [k * len(sentence) + sentence.index("Ingrid") for k in range(12)]


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
    assert empty.returncode == 2 and "\"text\" is empty" in empty.stderr, empty.stderr
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
    predictor = polymodal.load(out, device="cpu")
    folder = export_hf(predictor, tmp_path / "hf")
    hf = AutoModelForTokenClassification.from_pretrained(str(folder)).eval()
    tokenizer = predictor.model.encoders["text"].processor.tokenizer
    batch = tokenizer(["Ana Silva works at Nova Telecom in Lima."], return_tensors="pt")
    with torch.inference_mode():
        ours = predictor.model({"text": dict(batch)}, {"text": torch.tensor([True])})
        theirs = hf(**batch).logits
    assert torch.allclose(ours, theirs, atol=1e-4)
    assert hf.config.id2label[0] == "O"


def test_a_yaml_spec_with_the_token_task_learns_entities(ner_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    spec = {"name": "tagger", "data": {"train": str(ner_files["train"]),
                                       "test": str(ner_files["test"])},
            "inputs": [{"name": "text", "modality": "text", "encoder": "minilm",
                        "options": {"max_length": 48, "attention_dropout": 0.0}}],
            "fusion": {"name": "tokens"},
            "task": {"name": "token-classification", "target": "entities"},
            "train": {"epochs": 3, "batch_size": 16, "lr": 2.0e-4}}
    path = tmp_path / "ner.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = run_cli("train", str(path), "--out", str(tmp_path / "m"), "--json")
    assert result.returncode == 0, result.stderr
    test = json.loads(result.stdout)["metrics"]["test"]
    # Tagging every token with the majority tag (O) finds no entity: F1 0.
    assert test["f1"] > 0.6 and test["n"] == 60, test
    predicted = run_cli("predict", str(tmp_path / "m"), "--input", str(ner_files["test"]))
    assert predicted.returncode == 0, predicted.stderr
    first = json.loads(predicted.stdout.splitlines()[0])["entities"]
    assert first and all(set(e) == {"text", "label", "start", "end", "score"} for e in first)


@pytest.mark.parametrize(("override", "words"), [
    ("inputs.0.options.max_lenght=48", ["unknown option 'max_lenght' of encoder 'minilm'",
                                        "did you mean 'max_length'"]),
    ("fusion.options.feild=text", ["unknown option 'feild' of fusion 'tokens'",
                                   "did you mean 'field'"]),
    ("task.options.dropuot=0.2", ["unknown option 'dropuot' of task 'token-classification'",
                                  "did you mean 'dropout'"]),
    ("fusion.name=concat", ["reads token states", "fusion 'concat' gives none"]),
])
def test_misspelled_component_options_exit_2_and_leave_nothing(
        ner_files, tmp_path: Path, override: str, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "never"
    result = run_cli("nlp", "ner", "train", "--data", str(ner_files["train"]), "--out",
                     str(target), *FAST, "--set", override)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: spec: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not list(tmp_path.iterdir())
