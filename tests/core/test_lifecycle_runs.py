"""Scenario runs on the core lifecycle: a tracking plugin installed outside the repository
sees every kind of scenario train; torchrun, SIGTERM and resume on scenario verbs. (A file
of its own, apart from the conformance kit, so that pytest-xdist's two workers share the
long files evenly.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.testing import make_distribution, run_cli


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, default=lambda o: o.tolist()) + "\n"
                            for r in records))
    return path


TRACKER = '''
import json, os
from polymodal import hookimpl

@hookimpl
def on_training_event(event, state):
    with open(os.environ["TRACKER_LOG"], "a") as log:
        log.write(json.dumps({"event": event, "epoch": state.get("epoch")}) + "\\n")
'''


# A spec scenario (nlp.ner), one whose fit runs the core Trainer (vision.retrieve) and one
# without a training loop (nlp.search).
@pytest.mark.parametrize("name", ["nlp.ner", "vision.retrieve", "nlp.search"])
def test_a_tracking_plugin_sees_every_scenario_train(name: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "polymodal_tracker", TRACKER, entry_point="tracker")
    log = tmp_path / "events.jsonl"
    env = {"PYTHONPATH": str(site), "TRACKER_LOG": str(log)}
    domain, _, verb = name.partition(".")
    result = run_cli(domain, verb, "train", "--quick", "--out", str(tmp_path / "m"),
                     "--json", env=env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events[0] == "train_start" and events[-1] == "train_end"
    if name != "nlp.search":  # an index build has no epochs
        for event in ("step_end", "epoch_end", "checkpoint_saved"):
            assert event in events, (event, events)
        assert events.count("epoch_end") == events.count("checkpoint_saved") >= 2


# No dropout and no batch statistics: each process would draw its own masks, and gloo has no
# SyncBatchNorm. Two processes sum in another order (fp32: ~1e-7 relative), and Adam turns
# that noise on near-zero gradients into steps of up to lr, so retrieval's quick lr (2e-3)
# is lowered to NER's scale. How far that noise carries the parameters depends on the CPU's
# kernels and thread count (measured: under 1e-5 on one machine; 3.5e-4 for NER and 2.6e-4
# for retrieval on another, epoch losses equal to 1e-6 there; with one thread per process,
# epoch losses 6.5e-5 (NER) and 1.8e-4 (retrieval) relative apart). The parameters must
# agree to 1e-3, about ten Adam steps at lr 1e-4, and the epoch losses to 1e-3 relative: a
# missing gather (half the negatives) or a per-rank mean is a different loss by far more;
# tests/core/test_distributed_reductions.py checks the two reductions exactly (float64).
EXACT = {"nlp.ner": ["--set", "inputs.0.options.hidden_dropout=0.0",
                     "--set", "task.options.dropout=0.0"],
         "vision.retrieve": ["--set", "image.options.norm=group", "--set", "train.lr=1e-4"]}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_two_processes_train_as_one_with_the_same_global_batch(name: str,
                                                               tmp_path: Path) -> None:
    """``--nproc-per-node 2`` on a scenario verb (torchrun, gloo): rank 0 reports once and
    the weights equal a one-process run's (NER: the token mean over the global batch;
    retrieval: in-batch negatives gathered from both ranks)."""
    from safetensors.torch import load_file

    domain, _, verb = name.partition(".")
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"m{processes}"
        result = run_cli(domain, verb, "train", "--quick", *EXACT[name], "--out", str(out),
                         "--nproc-per-node", str(processes), "--json")
        assert result.returncode == 0, result.stderr
        runs[processes] = json.loads(result.stdout)  # one JSON document: only rank 0
        assert (out / "card.md").is_file() and not (tmp_path / f"m{processes}.partial").exists()
    one, two = (load_file(str(tmp_path / f"m{n}" / "model.safetensors")) for n in (1, 2))
    assert set(one) == set(two)
    worst = max(float((one[k].float() - two[k].float()).abs().max()) for k in one)
    assert worst < 1e-3, worst
    test_one, test_two = runs[1]["metrics"]["test"], runs[2]["metrics"]["test"]
    assert test_one["n"] == test_two["n"] > 0
    losses = [[json.loads(line)["train_loss"] for line in
               (tmp_path / f"m{n}" / "metrics.jsonl").read_text().splitlines()] for n in (1, 2)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-3)  # the same global-batch loss


def test_a_fitted_scenario_without_distributed_training_refuses_processes(tmp_path: Path
                                                                         ) -> None:
    refused = run_cli("vision", "caption", "train", "--quick", "--nproc-per-node", "2",
                      "--out", str(tmp_path / "c"))
    assert refused.returncode == 2 and "trains in one process" in refused.stderr
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(("name", "extra"), [
    ("nlp.ner", ["--set", "inputs.0.options.max_length=48", "--set", "train.epochs=4"]),
    ("vision.caption", ["--set", "train.epochs=4", "--set", "train.batch_size=16"]),
])
def test_sigterm_then_resume_ends_as_an_uninterrupted_run(name: str, extra: list[str],
                                                          tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from polymodal.scenario import load_scenario

    domain, _, verb = name.partition(".")
    demo = load_scenario(name).load_demo()
    train = _jsonl(tmp_path / "train.jsonl", demo.train[:96])
    test = _jsonl(tmp_path / "test.jsonl", demo.test[:10])
    args = [domain, verb, "train", "--data", str(train), "--test", str(test), *extra, "--json"]
    reference = run_cli(*args, "--out", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "run"
    run = subprocess.Popen([sys.executable, "-m", "polymodal.cli.main", *args, "--out",
                            str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    deadline = time.time() + 300
    while not (tmp_path / "run.partial" / "checkpoints" / "last").is_dir():
        assert time.time() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGTERM)  # during epoch 2: honoured at the next step
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 130, stderr
    assert "interrupted: training stopped by SIGTERM" in stderr and "--resume" in stderr
    assert not out.exists()
    resumed = run_cli(*args, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    ours, theirs = (json.loads(r.stdout)["metrics"] for r in (resumed, reference))
    history = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    expected = [json.loads(line) for line in (tmp_path / "ref" / "metrics.jsonl").open()]
    assert [r["train_loss"] for r in history] == pytest.approx(
        [r["train_loss"] for r in expected], rel=1e-6)
    for key, value in theirs["test"].items():
        if isinstance(value, float):
            assert ours["test"][key] == pytest.approx(value, abs=1e-6), key
