"""The trainer learns, is deterministic on CPU, and resumes to the same result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.data.loader import BucketBatchSampler, GroupedBatchSampler
from polymodal.pipeline import fit_model, run_training, split_validation
from polymodal.spec import parse_spec
from polymodal.training import lr_lambda
from tests.conftest import review_rows

TABULAR = {
    "name": "tabular",
    "inputs": [{"name": "shop", "modality": "categorical", "encoder": "categorical"},
               {"name": "price", "modality": "numeric", "encoder": "numeric"}],
    "fusion": {"name": "concat"},
    "task": {"name": "classification", "target": "label"},
    "train": {"epochs": 4, "batch_size": 16, "lr": 0.01, "seed": 3},
}


def test_learns_above_majority_and_is_deterministic(tmp_path: Path) -> None:
    rows = review_rows(200)
    spec = parse_spec(TABULAR)
    first = run_training(spec, tmp_path / "a", train_records=rows[:160],
                         test_records=rows[160:], progress=False)
    second = run_training(spec, tmp_path / "b", train_records=rows[:160],
                          test_records=rows[160:], progress=False)
    majority = max(sum(r["label"] == "pos" for r in rows[160:]), 20) / 40
    assert first.metrics["test"]["accuracy"] > majority + 0.2
    assert first.metrics["test"] == second.metrics["test"]
    history = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").open()]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    for name in ("report.html", "plots/loss.png", "plots/confusion_matrix.png", "card.md",
                 "metrics.json", "polymodal.yaml", "model.safetensors"):
        assert (tmp_path / "a" / name).is_file(), name


def test_further_held_out_sets_are_scored_beside_the_test_split(tmp_path: Path) -> None:
    """``extra_tests`` (a scenario's hand-labelled real data beside its synthetic test
    split): each is scored, with the baselines, into metrics.json and the report."""
    rows = review_rows(200)
    flipped = [{**r, "label": "neg" if r["label"] == "pos" else "pos"} for r in rows[160:]]

    def majority(train: list[dict], test: list[dict]) -> dict[str, float]:
        return {"accuracy": sum(r["label"] == "pos" for r in test) / len(test)}

    result = run_training(parse_spec(TABULAR), tmp_path / "m", train_records=rows[:160],
                          test_records=rows[160:], progress=False,
                          baselines={"all pos": majority},
                          extra_tests={"labels flipped": lambda: flipped})
    extra = result.metrics["extra_tests"]["labels flipped"]
    assert extra["accuracy"] == pytest.approx(1 - result.metrics["test"]["accuracy"])
    assert set(result.comparisons["labels flipped: model and baselines"]) == {"model",
                                                                             "all pos"}
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert saved["extra_tests"]["labels flipped"]["accuracy"] == extra["accuracy"]
    assert "labels flipped" in (tmp_path / "m" / "report.html").read_text()


class Interrupt(Exception):
    pass


def test_resume_after_interruption_matches_uninterrupted(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from polymodal.training import run

    rows = review_rows(160)
    spec = parse_spec(TABULAR)
    train, val = split_validation(rows, 0.2, 0)
    reference = fit_model(spec, train, val, tmp_path / "ref", device="cpu", progress=False)

    def stop_after_two(event: str, state: dict) -> None:
        if event == "checkpoint_saved" and state["epoch"] == 2:
            raise Interrupt

    monkeypatch.setattr(run, "event_hook", lambda: stop_after_two)
    with pytest.raises(Interrupt):
        fit_model(spec, train, val, tmp_path / "run", device="cpu", progress=False)
    monkeypatch.undo()
    resumed = fit_model(spec, train, val, tmp_path / "run", device="cpu", progress=False,
                        resume=True)
    assert len(resumed.history) == 4
    assert resumed.history[-1]["val_accuracy"] == reference.history[-1]["val_accuracy"]
    assert resumed.history[-1]["train_loss"] == pytest.approx(
        reference.history[-1]["train_loss"], rel=1e-6)


def test_early_stopping_and_best_epoch(tmp_path: Path) -> None:
    data = json.loads(json.dumps(TABULAR))
    data["train"].update({"epochs": 30, "patience": 2, "lr": 0.05})
    rows = review_rows(120)
    result = run_training(parse_spec(data), tmp_path / "m", train_records=rows, progress=False)
    assert result.metrics["best_epoch"] < 30 and result.metrics["stopped_early"] is True
    history = [json.loads(line) for line in (tmp_path / "m" / "metrics.jsonl").open()]
    assert len(history) < 30 and len(history) >= result.metrics["best_epoch"] + 2


def test_warmup_then_cosine_schedule() -> None:
    factor = lr_lambda("cosine", warmup_steps=10, total_steps=110)
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5)
    assert factor(110) == pytest.approx(0.0)


def test_bucketed_batches_group_similar_lengths() -> None:
    lengths = [i % 100 for i in range(1000)]
    sampler = BucketBatchSampler(lengths, 10, seed=0)
    batches = sampler.batches()
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 10  # random batches would spread ~80
    sampler.set_epoch(1)
    assert sampler.batches() != batches


def test_module_steps_with_lengths_train_on_bucketed_batches(tmp_path: Path) -> None:
    import torch

    from polymodal.spec import TrainSpec
    from polymodal.training import ModuleSteps, fit_steps

    lengths = [(i * 37) % 100 for i in range(400)]
    seen: list[list[int]] = []

    def collate(items: list[int]) -> torch.Tensor:
        seen.append([lengths[i] for i in items])
        return torch.tensor([[float(lengths[i])] for i in items])

    def steps(bucketed: bool) -> ModuleSteps:
        return ModuleSteps(torch.nn.Linear(1, 1), collate=collate,
                           loss=lambda module, batch: module(batch / 100).pow(2).mean(),
                           identity={}, batch_size=len,
                           lengths=(lambda items: [lengths[i] for i in items])
                           if bucketed else None)

    spreads = []
    for bucketed in (True, False):
        seen.clear()
        fit_steps(TrainSpec(epochs=1, batch_size=10), steps(bucketed), list(range(400)), [],
                  tmp_path / str(bucketed), device="cpu", progress=False)
        assert sorted(v for batch in seen for v in batch) == sorted(lengths)
        spreads.append(sum(max(b) - min(b) for b in seen) / len(seen))
    assert spreads[0] < 10 < 60 < spreads[1]  # shuffled batches of 10 spread ~80


def test_grouped_batches_keep_records_that_share_a_value_together() -> None:
    groups = [f"image-{i // 6}" for i in range(600)]  # 100 images, 6 questions each
    sampler = GroupedBatchSampler(groups, 30, seed=0)
    batches = sampler.batches()
    assert sorted(i for b in batches for i in b) == list(range(600))
    assert max(len({groups[i] for i in b}) for b in batches) <= 6  # random: ~26 per batch
    assert [i for b in batches for i in b] != list(range(600))  # shuffled
    sampler.set_epoch(1)
    assert sampler.batches() != batches


def test_a_shared_input_is_encoded_once_per_batch_with_the_same_result(tmp_path: Path) -> None:
    import torch

    from polymodal.data.collate import Collator

    rows = review_rows(120)
    spec = parse_spec({**TABULAR, "train": {**TABULAR["train"], "group_by": "shop"}})
    train, val = split_validation(rows, 0.2, 0)
    result = fit_model(spec, train, val, tmp_path, device="cpu", progress=False)
    model = result.model.eval()
    batch = rows[:40]
    plain = Collator(spec, model.processors, None)(batch)
    shared = Collator(spec, model.processors, None, shared="shop")(batch)
    distinct = len({r["shop"] for r in batch})
    assert len(next(iter(shared["inputs"]["shop"].values()))) == distinct < len(batch)
    with torch.no_grad():
        expected = model(plain["inputs"], plain["present"])
        got = model(shared["inputs"], shared["present"], shared["repeat"])
    torch.testing.assert_close(got, expected)
    accuracy = (got.argmax(-1) == model.task.collate_targets([r["label"] for r in batch], plain))
    assert accuracy.float().mean() > 0.8  # trained with grouped batches, it learned


def test_limit_batches_trains_that_many_batches_an_epoch(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from polymodal.training import run

    data = json.loads(json.dumps(TABULAR))
    data["train"].update({"epochs": 2, "limit_batches": 3})
    steps: list[int] = []
    monkeypatch.setattr(run, "event_hook", lambda: lambda event, state: steps.append(
        state["step"]) if event == "step_end" else None)
    rows = review_rows(160)  # 8 batches of 16 an epoch without the limit
    result = fit_model(parse_spec(data), rows[:128], rows[128:], tmp_path / "m",
                       device="cpu", progress=False)
    assert steps == [1, 2, 3, 4, 5, 6] and len(result.history) == 2
