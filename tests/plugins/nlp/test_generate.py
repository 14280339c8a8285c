"""nlp.generate with checkpoints the tests build: a tiny GPT-2 config trained from scratch
on a text file learns it (perplexity falls; greedy decoding reproduces the text exactly),
stop strings cut, sampling is seeded, a saved checkpoint fine-tunes, bad input is refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

RHYME = "the cat sat on the mat and the dog ran to the park."
TINY = ["--set", "config.vocab_size=300", "--set", "config.n_layer=2", "--set",
        "config.n_embd=64", "--set", "config.n_head=2", "--set", "block_size=32",
        "--set", "train.epochs=30", "--set", "train.batch_size=8", "--set", "train.lr=0.003",
        "--set", "validation=0.2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("generate")
    (folder / "rhyme.txt").write_text("\n\n".join([RHYME] * 60) + "\n")
    out = folder / "model"
    result = run_cli("nlp", "generate", "train", "--data", str(folder / "rhyme.txt"), "--out",
                     str(out), *TINY, "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def generate(model: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("nlp", "generate", "run", "--model", str(model), *args, "--json")


def test_training_lowers_perplexity(trained) -> None:  # type: ignore[no-untyped-def]
    out, summary = trained
    test = summary["metrics"]["test"]
    assert test["perplexity"] < 1.5 < test["perplexity_before"]
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()


def test_greedy_decoding_reproduces_the_text(trained) -> None:  # type: ignore[no-untyped-def]
    out, _ = trained
    result = generate(out, "the cat sat", "--greedy", "--max-new-tokens", "12")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"].startswith(" on the mat and the dog ran to")


def test_stop_string_cuts_the_continuation(trained) -> None:  # type: ignore[no-untyped-def]
    out, _ = trained
    result = generate(out, "the cat sat", "--greedy", "--stop", "dog", "--max-new-tokens", "20")
    assert json.loads(result.stdout)["text"] == " on the mat and the "


def test_sampling_is_reproducible_with_a_seed(trained) -> None:  # type: ignore[no-untyped-def]
    out, _ = trained
    runs = [json.loads(generate(out, "the", "--seed", "3", "--temperature", "1.5",
                                "--top-k", "20", "--top-p", "0.95",
                                "--max-new-tokens", "20").stdout)["text"]
            for _ in range(2)]
    assert runs[0] == runs[1] and runs[0]


def test_fine_tunes_a_saved_checkpoint(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = trained
    (tmp_path / "more.txt").write_text("\n\n".join(["the bird flew over the mat."] * 40))
    result = run_cli("nlp", "generate", "train", "--model", str(out), "--data",
                     str(tmp_path / "more.txt"), "--out", str(tmp_path / "tuned"),
                     "--set", "train.epochs=5", "--set", "train.lr=0.003", "--set",
                     "block_size=32", "--json")
    assert result.returncode == 0, result.stderr
    test = json.loads(result.stdout)["metrics"]["test"]
    assert test["perplexity"] < test["perplexity_before"]


def test_bad_input(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = trained
    empty = generate(out, "  ")
    assert empty.returncode == 2 and "prompt 0: empty" in empty.stderr
    missing = run_cli("nlp", "generate", "run", "--model", str(tmp_path), "hello")
    assert missing.returncode == 2 and "not a local Hugging Face checkpoint" in missing.stderr
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    result = run_cli("nlp", "generate", "train", "--data", str(binary), "--out",
                     str(tmp_path / "never"), *TINY)
    assert result.returncode == 2 and "not UTF-8" in result.stderr
    assert not (tmp_path / "never").exists()


def test_predict_batches_records_with_their_options(trained) -> None:  # type: ignore[no-untyped-def]
    import polymodal

    out, _ = trained
    generator = polymodal.load(out)
    records = [{"prompt": "the cat sat", "greedy": True, "max_new_tokens": 6},
               {"prompt": "the dog", "greedy": True, "max_new_tokens": 6},
               {"prompt": "the cat sat", "greedy": True, "max_new_tokens": 6, "stop": ["mat"]}]
    texts = [p["text"] for p in generator.predict(records)]
    assert texts[0].startswith(" on the mat") and texts[2] == " on the "
    assert texts[1].startswith(" ran to the")
    from polymodal.errors import DataError

    with pytest.raises(DataError, match="generation option temperature"):
        generator.predict([{"prompt": "the", "temperature": -1}])
