"""vision.retrieve and vision.caption end to end on a sliver of the synthetic scenes: they
train, beat chance, save, load through polymodal.load, and the retrieval index answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def retrieval_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("retrieve") / "model"
    result = run_cli("vision", "retrieve", "train", "--quick", "--out", str(out),
                     "--set", "train.epochs=16", "--set", "train.lr=0.003",
                     "--set", "validation=0.1", "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def test_retrieval_beats_chance(retrieval_model) -> None:  # type: ignore[no-untyped-def]
    out, summary = retrieval_model
    metrics = summary["metrics"]
    test = metrics["test"]
    assert test["n"] == 200
    assert test["text_to_image_recall@10"] > 2 * 10 / 200  # chance is k / n
    # The core Trainer picked the best epoch by validation recall@5 and wrote its files.
    assert 1 <= metrics["best_epoch"] <= 16 and metrics["validation"]["n"] == 40
    history = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    assert [row["epoch"] for row in history] == list(range(1, 17))
    best = max(history, key=lambda row: row["val_recall@5"])
    assert best["epoch"] == metrics["best_epoch"]
    for name in ("card.md", "report.html", "plots/loss.png"):
        assert (out / name).is_file(), name


def test_mixed_records_come_back_in_order_and_match_their_kind(retrieval_model) -> None:  # type: ignore[no-untyped-def]
    """The predictor batches images and texts apart and puts results back in input order;
    an autocast request (bf16) stays close to fp32."""
    import torch

    import polymodal
    from polymodal.errors import DataError
    from polymodal_vision.pairs import caption_records

    out, _ = retrieval_model
    _, test = caption_records(quick=True)
    records = [{"text": test[0]["caption"]}, {"image": test[1]["image"]},
               {"text": test[2]["caption"]}]
    retriever = polymodal.load(out)
    vectors = torch.tensor([r["embedding"] for r in retriever.predict(records)])
    texts = retriever.embed_texts([test[0]["caption"], test[2]["caption"]])
    image = retriever.embed_images([test[1]["image"]])
    assert torch.allclose(vectors[[0, 2]], texts, atol=1e-5)
    assert torch.allclose(vectors[1], image[0], atol=1e-5)
    bf16 = polymodal.load(out, precision="bf16").embed_images([test[1]["image"]])
    assert float((bf16 - image).abs().max()) < 0.05
    with pytest.raises(DataError, match="each record needs"):
        retriever.predict([{"caption": "no image, no text"}])


def test_index_and_query(retrieval_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from polymodal_vision.pairs import caption_records

    model, _ = retrieval_model
    _, test = caption_records(quick=True)
    images = [r["image"] for r in test[:30]]
    index = tmp_path / "index"
    built = run_cli("vision", "retrieve", "index", *images, "--model", str(model),
                    "--out", str(index))
    assert built.returncode == 0, built.stderr
    assert (index / "vectors.safetensors").is_file()
    found = run_cli("vision", "retrieve", "query", str(index), test[0]["caption"], "-k", "5",
                    "--json")
    results = json.loads(found.stdout)["results"]
    assert len(results) == 5 and all(r["image"] in images for r in results)
    assert results == sorted(results, key=lambda r: -r["score"])


def test_captioning_learns_the_grammar(tmp_path: Path) -> None:
    out = tmp_path / "captioner"
    result = run_cli("vision", "caption", "train", "--quick", "--out", str(out),
                     "--set", "train.epochs=8", "--set", "train.lr=0.003", "--json")
    assert result.returncode == 0, result.stderr
    test = json.loads(result.stdout)["metrics"]["test"]
    assert test["bleu4"] > 0.2
    for example in test["examples"]:
        assert example["predicted"].startswith("a ")  # the grammar's first word
    predicted = run_cli("predict", str(out), "--input", str(_one_image(tmp_path)))
    assert json.loads(predicted.stdout.splitlines()[0])["caption"].startswith("a ")


def _one_image(tmp_path: Path) -> Path:
    from polymodal_vision.pairs import caption_records

    _, test = caption_records(quick=True)
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"image": test[0]["image"]}) + "\n")
    return path
