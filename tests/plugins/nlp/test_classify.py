"""nlp.classify: any label set from a CSV/JSONL through --text-column/--label-column,
single- and multi-label (per-label F1), with the core multilabel task."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from polymodal.errors import DataError
from polymodal.spec import TaskSpec
from polymodal.tasks.multilabel import MultilabelTask
from tests.conftest import run_cli

QUICK = ["--quick", "--set", "train.epochs=6"]


def test_multilabel_task_targets_metrics_and_decoding() -> None:
    task = MultilabelTask(TaskSpec(name="multilabel", target="tags"))
    task.fit(["a|b", ["c"], "", "b"])
    assert task.labels == ["a", "b", "c"]
    encoded = task.collate_targets(["a|b", [], "c"], {})
    assert encoded.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    with pytest.raises(DataError, match="not seen in training: d"):
        task.collate_targets(["d"], {})
    logits = torch.tensor([[3.0, 2.0, -3.0], [-3.0, -3.0, -3.0], [-3.0, -3.0, 3.0]])
    metrics = task.metrics()
    metrics.update(task.metric_inputs(logits), encoded)
    result = task.finalize_metrics(metrics.compute())
    assert result["f1_micro"] == 1.0 and result["subset_accuracy"] == 1.0
    assert result["per_label_f1"] == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert [d["labels"] for d in task.decode(logits, {})] == [["a", "b"], [], ["c"]]


@pytest.fixture(scope="module")
def csv_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from polymodal_nlp.classify import load_demo

    folder = tmp_path_factory.mktemp("classify")
    demo = load_demo()
    paths = []
    for name, rows in (("train.csv", demo.train[:240]), ("test.csv", demo.test[:80])):
        with (folder / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sentence", "kinds", "has_person"])
            for row in rows:
                writer.writerow([row["text"], "|".join(row["labels"]),
                                 "yes" if "PER" in row["labels"] else "no"])
        paths.append(folder / name)
    return paths[0], paths[1]


def test_multilabel_from_csv_columns(csv_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train, test = csv_data
    out = tmp_path / "multi"
    result = run_cli("nlp", "classify", "train", "--data", str(train), "--test", str(test),
                     "--text-column", "sentence", "--label-column", "kinds", "--multi-label",
                     "--out", str(out), *QUICK, "--json")
    assert result.returncode == 0, result.stderr
    test_metrics = json.loads(result.stdout)["metrics"]["test"]
    assert set(test_metrics["per_label_f1"]) == {"PER", "ORG", "LOC", "MISC"}
    assert test_metrics["f1_micro"] > 0.7
    predicted = run_cli("nlp", "classify", "predict", str(out), "--input", str(test))
    first = json.loads(predicted.stdout.splitlines()[0])
    assert set(first["scores"]) == {"PER", "ORG", "LOC", "MISC"}
    assert all(first["scores"][label] >= 0.5 for label in first["labels"])


def test_single_label_from_csv_columns(csv_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train, test = csv_data
    result = run_cli("nlp", "classify", "train", "--data", str(train), "--test", str(test),
                     "--text-column", "sentence", "--label-column", "has_person",
                     "--single-label", "--out", str(tmp_path / "single"), *QUICK, "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]["test"]
    majority = max(sum(1 for r in csv.DictReader(test.open()) if r["has_person"] == v)
                   for v in ("yes", "no")) / 80
    assert metrics["accuracy"] > majority


def test_unknown_column_is_refused(csv_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train, _ = csv_data
    result = run_cli("nlp", "classify", "train", "--data", str(train), "--text-column",
                     "review", "--label-column", "kinds", "--out", str(tmp_path / "x"), *QUICK)
    assert result.returncode == 2 and "review" in result.stderr and "sentence" in result.stderr
    assert not (tmp_path / "x").exists()
