"""torch.distributed training: same result as one process, a dead rank ends the run, and an
interrupted run resumes to the same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from polymodal.errors import TrainingInterrupted
from polymodal.pipeline import fit_model, split_validation
from polymodal.spec import parse_spec
from tests.conftest import review_rows, run_cli, write_csv

# No dropout anywhere: with dropout each process draws its own masks.
SPEC = {
    "name": "ddp",
    "data": {"train": "train.csv", "validation": 0.25},
    "inputs": [{"name": "shop", "modality": "categorical", "encoder": "categorical"},
               {"name": "price", "modality": "numeric", "encoder": "numeric"}],
    "fusion": {"name": "concat", "options": {"dropout": 0.0}},
    "task": {"name": "classification", "target": "label", "options": {"dropout": 0.0}},
    "train": {"epochs": 3, "batch_size": 16, "lr": 0.01, "seed": 0, "precision": "fp32"},
}


def write_run(tmp_path: Path, rows: int = 256, **train: object) -> Path:
    write_csv(tmp_path / "train.csv", review_rows(rows))
    spec = json.loads(json.dumps(SPEC))
    spec["train"].update(train)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "spec.yaml"


def weights(model_dir: Path) -> dict:
    return load_file(str(model_dir / "model.safetensors"))


def test_two_processes_match_one_with_the_same_global_batch(tmp_path: Path) -> None:
    spec = write_run(tmp_path)
    single = run_cli("train", str(spec), "--out", str(tmp_path / "one"), "--quiet")
    assert single.returncode == 0, single.stderr
    double = run_cli("train", str(spec), "--out", str(tmp_path / "two"), "--quiet",
                     "--nproc-per-node", "2")
    assert double.returncode == 0, double.stderr
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert set(one) == set(two)
    for key in one:  # fp32 sums in a different order: equal to about 1e-7
        assert (one[key] - two[key]).abs().max() < 1e-5, key
    history_one = (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()
    history_two = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(history_one) == len(history_two) == 3
    assert json.loads(history_two[-1])["val_n"] == 64  # the whole validation set, once


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_killed_rank_ends_the_run_with_a_clear_error(tmp_path: Path) -> None:
    spec = write_run(tmp_path, rows=4000, epochs=200, batch_size=8)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "polymodal.cli.main", "train", str(spec), "--out",
         str(tmp_path / "m"), "--quiet", "--nproc-per-node", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "m.partial" / "checkpoints" / "last").is_dir():
            assert time.time() < deadline and launcher.poll() is None, "training never started"
            time.sleep(0.2)
        workers = _children(launcher.pid)
        assert len(workers) == 2
        killed = time.time()
        os.kill(workers[-1], signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=90)
        assert time.time() - killed < 90
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 2
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: distributed training failed")
    assert not (tmp_path / "m").exists()


def test_interrupted_mid_epoch_resumes_to_the_same_result(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from polymodal.training import run

    data = json.loads(json.dumps(SPEC))
    data["fusion"]["options"]["dropout"] = 0.2  # RNG state must be restored too
    spec = parse_spec(data)
    train, val = split_validation(review_rows(240), 0.2, 0)
    reference = fit_model(spec, train, val, tmp_path / "ref", device="cpu", progress=False)

    def interrupt_mid_epoch_two(event: str, state: dict) -> None:
        if event == "step_end" and state["epoch"] == 1 and state["batch"] == 5:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(run, "event_hook", lambda: interrupt_mid_epoch_two)
    with pytest.raises(TrainingInterrupted, match="SIGINT at epoch 2, batch 5"):
        fit_model(spec, train, val, tmp_path / "run", device="cpu", progress=False)
    saved = json.loads((tmp_path / "run" / "checkpoints" / "last" / "trainer_state.json")
                       .read_text())
    assert (saved["epoch"], saved["batch"]) == (1, 5)
    monkeypatch.undo()
    resumed = fit_model(spec, train, val, tmp_path / "run", device="cpu", progress=False,
                        resume=True)
    assert [r["train_loss"] for r in resumed.history] == pytest.approx(
        [r["train_loss"] for r in reference.history], rel=1e-9)
    assert resumed.history[-1]["val_loss"] == pytest.approx(
        reference.history[-1]["val_loss"], rel=1e-9)


def test_sigterm_saves_a_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    spec = write_run(tmp_path, rows=6000, epochs=3, batch_size=4)
    reference = run_cli("train", str(spec), "--out", str(tmp_path / "ref"), "--json")
    assert reference.returncode == 0, reference.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "polymodal.cli.main", "train", str(spec), "--out",
         str(tmp_path / "m"), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "m.partial" / "checkpoints" / "last").is_dir():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted: training stopped by SIGTERM" in stderr
    assert not (tmp_path / "m").exists()
    resumed = run_cli("train", str(spec), "--out", str(tmp_path / "m"), "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    expected = json.loads(reference.stdout)["metrics"]["validation"]
    got = json.loads(resumed.stdout)["metrics"]["validation"]
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-9)
    assert got["accuracy"] == expected["accuracy"]


@pytest.mark.restart
def test_max_restarts_resumes_from_the_last_checkpoint(tmp_path: Path) -> None:
    # Not in the default run (pytest -m restart): right after a rank dies, a restarted gloo
    # group sometimes fails to connect to the dead group's stale address or hangs
    # (pytorch/pytorch#167288); it passed 3 times and failed 2 times out of 5 here.
    spec = write_run(tmp_path, rows=4000, epochs=6, batch_size=8)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "polymodal.cli.main", "train", str(spec), "--out",
         str(tmp_path / "m"), "--quiet", "--nproc-per-node", "2", "--max-restarts", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        checkpoint = tmp_path / "m.partial" / "checkpoints" / "last" / "trainer_state.json"
        deadline = time.time() + 120
        while not checkpoint.is_file():
            assert time.time() < deadline and launcher.poll() is None, "training never started"
            time.sleep(0.2)
        epochs_before = json.loads(checkpoint.read_text())["epoch"]
        os.kill(_children(launcher.pid)[-1], signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=300)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, stderr
    history = [json.loads(line) for line in (tmp_path / "m" / "metrics.jsonl").open()]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert epochs_before >= 1
