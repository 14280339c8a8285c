"""Shared fixtures: small data sets and a tiny BERT checkpoint the tests build themselves."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

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


def run_cli(*args: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the polymodal CLI in a fresh process (as a user would)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "polymodal.cli.main", *args],
                          capture_output=True, text=True, env=full_env, cwd=cwd,
                          timeout=600)
