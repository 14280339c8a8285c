"""Shared fixtures: small data sets and a tiny BERT checkpoint the tests build themselves."""

from __future__ import annotations

import contextlib
import csv
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from polymodal.testing import run_cli  # noqa: F401 - the suite's tests import it from here

ROOT = Path(__file__).resolve().parents[1]

POSITIVE = ["good", "great", "tasty", "fresh", "lovely", "excellent"]
NEGATIVE = ["bad", "awful", "stale", "bland", "broken", "terrible"]
FILLER = ["the", "snack", "was", "really", "very", "box", "and", "taste", "it", "a"]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with a word-level vocabulary, saved as an HF folder."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = sorted(set(POSITIVE + NEGATIVE + FILLER))
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *letters,
             *[f"##{c}" for c in letters]]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def review_model(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text classifier (tiny BERT, fine-tuned on synthetic reviews): review -> pos/neg."""
    from polymodal.pipeline import run_training
    from polymodal.spec import parse_spec

    spec = parse_spec({
        "name": "reviews",
        "inputs": [{"name": "review", "modality": "text", "encoder": "hf-text",
                    "source": str(tiny_bert), "lr": 3.0e-3, "options": {"max_length": 16}}],
        "fusion": {"name": "concat"},
        "task": {"name": "classification", "target": "label"},
        "train": {"epochs": 4, "lr": 3.0e-3, "batch_size": 16, "seed": 0},
    })
    out = tmp_path_factory.mktemp("review-model") / "reviews"
    run_training(spec, out, train_records=review_rows(240), progress=False)
    return out


def review_rows(n: int, seed: int = 0) -> list[dict[str, object]]:
    """Synthetic reviews: the label follows the sentiment words, helped by price and shop."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = rng.random() < 0.5
        words = rng.sample(FILLER, 4) + [rng.choice(POSITIVE if positive else NEGATIVE)]
        rng.shuffle(words)
        rows.append({
            "review": " ".join(words),
            "shop": rng.choice(["north", "south"]) if positive else rng.choice(["east", "west"]),
            "price": round(rng.gauss(10 if positive else 14, 1.5), 2),
            "label": "pos" if positive else "neg",
            "id": i,
        })
    return rows


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture()
def reviews_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "reviews.csv", review_rows(240))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(server: subprocess.Popen[str], base: str, timeout_s: float = 90) -> None:
    """Until the server's /ready answers 200; fails with its stderr if it exits first."""
    import httpx

    deadline = time.time() + timeout_s
    while True:
        try:
            if httpx.get(f"{base}/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.time() < deadline and server.poll() is None, server.stderr.read()
        time.sleep(0.2)


@contextlib.contextmanager
def serving(model_dirs: list[Path], *options: str) -> Iterator[str]:
    """``polymodal serve`` in a real process on a free loopback port; yields its base URL
    once /ready answers, and stops it (SIGTERM) afterwards."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "polymodal.cli.main", "serve",
                               *map(str, model_dirs), "--port", str(port), *options],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(server, base)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


