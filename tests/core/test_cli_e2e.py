"""Train, evaluate and predict through the CLI on text + categorical + numeric columns;
bad input is one line, exit code 2, and leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import review_rows, run_cli, write_csv


def write_spec(tmp_path: Path, tiny_bert: Path, fusion: str = "gated", **extra) -> Path:
    spec = {
        "name": "reviews",
        "data": {"train": "train.csv", "test": "test.csv", "validation": 0.1},
        "inputs": [
            {"name": "review", "modality": "text", "encoder": "hf-text",
             "source": str(tiny_bert), "lr": 3.0e-3, "options": {"max_length": 16}},
            {"name": "shop", "modality": "categorical", "encoder": "categorical"},
            {"name": "price", "modality": "numeric", "encoder": "numeric"},
        ],
        "fusion": {"name": fusion},
        "task": {"name": "classification", "target": "label"},
        "train": {"epochs": 3, "batch_size": 16, "lr": 5.0e-3, "seed": 0},
        **extra,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    rows = review_rows(260, seed=1)
    for row in rows[:10]:  # records with an empty field must train and predict
        row["review"] = ""
    for row in rows[10:20]:
        row["price"] = ""
    write_csv(tmp_path / "train.csv", rows[:200])
    write_csv(tmp_path / "test.csv", rows[200:])
    return tmp_path


@pytest.mark.parametrize("fusion", ["gated", "attention", "late", "concat"])
def test_train_evaluate_predict(data_dir: Path, tiny_bert: Path, fusion: str) -> None:
    spec = write_spec(data_dir, tiny_bert, fusion)
    out = data_dir / "model"
    result = run_cli("train", str(spec), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["test"]["accuracy"] >= 0.8  # majority class is ~0.5

    evaluated = run_cli("evaluate", str(out), "--data", str(data_dir / "test.csv"), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    again = json.loads(evaluated.stdout)
    assert again["accuracy"] == pytest.approx(metrics["test"]["accuracy"])

    records = [{"review": "the snack was great", "shop": "north", "price": 10},
               {"review": "", "shop": "west"},
               {"price": 15}]
    (data_dir / "in.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    predicted = run_cli("predict", str(out), "--input", str(data_dir / "in.jsonl"), "--json")
    assert predicted.returncode == 0, predicted.stderr
    lines = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert len(lines) == 3
    assert lines[0]["label"] == "pos" and lines[1]["label"] == "neg"
    assert set(lines[2]["scores"]) == {"neg", "pos"}


def test_python_api_matches_cli(data_dir: Path, tiny_bert: Path) -> None:
    import polymodal

    spec = write_spec(data_dir, tiny_bert, "concat", ablation=True)
    out = data_dir / "model"
    result = run_cli("train", str(spec), "--out", str(out), "--set", "train.epochs=2",
                     "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    ablation = body["comparisons"]["modality ablation (held-out)"]
    assert set(ablation) == {"all inputs (concat)", "only review", "only shop", "only price"}
    assert "modality ablation" in (out / "report.html").read_text()
    predictor = polymodal.load(out)
    preds = predictor.predict([{"review": "awful and stale", "shop": "east", "price": 14}])
    assert preds[0]["label"] == "neg"


def _assert_clean_failure(result, *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_inputs_fail_cleanly(data_dir: Path, tiny_bert: Path) -> None:
    spec = write_spec(data_dir, tiny_bert)
    out = data_dir / "never"

    (data_dir / "train.csv").rename(data_dir / "good.csv")
    (data_dir / "train.csv").write_text("")
    _assert_clean_failure(run_cli("train", str(spec), "--out", str(out)), "empty")

    (data_dir / "train.csv").write_text('review,shop,price,label\n"unterminated,a,1,pos\n')
    _assert_clean_failure(run_cli("train", str(spec), "--out", str(out)))

    (data_dir / "train.csv").write_text("review,price,label\ngood,1,pos\nbad,2,neg\n")
    _assert_clean_failure(run_cli("train", str(spec), "--out", str(out)),
                          "'shop'")

    (data_dir / "good.csv").rename(data_dir / "train.csv")
    _assert_clean_failure(run_cli("train", str(spec), "--out", str(out),
                                  "--set", "fusion.name=gatted"), "'gated'")
    _assert_clean_failure(run_cli("train", str(spec), "--out", str(out),
                                  "--set", "train.epoch=1"), "'epochs'")
    _assert_clean_failure(run_cli("train", str(data_dir / "nope.yaml")), "not found")
    _assert_clean_failure(run_cli("evaluate", str(data_dir / "missing-model"), "--data",
                                  str(data_dir / "test.csv")), "not found")
    assert not out.exists()
    assert not list(data_dir.glob("never*")) and not list(data_dir.glob(".never*"))


def test_corrupt_weights_fail_cleanly(data_dir: Path, tiny_bert: Path) -> None:
    spec = write_spec(data_dir, tiny_bert, "concat")
    out = data_dir / "model"
    assert run_cli("train", str(spec), "--out", str(out), "--set", "train.epochs=1",
                   "--quiet").returncode == 0
    weights = out / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    (data_dir / "in.jsonl").write_text('{"review": "good"}\n')
    _assert_clean_failure(run_cli("predict", str(out), "--input", str(data_dir / "in.jsonl")),
                          "corrupt")
