"""A vector index on disk, shared by every plugin that searches embeddings (text search,
image retrieval): normalised vectors in ``vectors.safetensors``, one JSON line of metadata
per item in ``items.jsonl``, facts about the index in ``index.json``. Written atomically;
searched by cosine similarity with one matrix product on the chosen device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

VECTORS, ITEMS, META = "vectors.safetensors", "items.jsonl", "index.json"


def write_index(directory: str | Path, vectors: torch.Tensor, items: list[dict[str, Any]],
                meta: dict[str, Any], manifest: dict[str, Any] | None = None) -> None:
    """``manifest`` (a spec naming a scenario, and metrics) makes the index a model
    directory that ``polymodal.load``, ``predict`` and ``serve`` open."""
    from safetensors.torch import save_file

    from polymodal.artifacts import building_directory, write_manifest

    if len(vectors) != len(items):
        raise ValueError(f"{len(vectors)} vectors for {len(items)} items")
    with building_directory(directory) as work:
        save_file({"vectors": vectors.float().contiguous()}, str(work / VECTORS))
        (work / ITEMS).write_text("".join(json.dumps(item) + "\n" for item in items))
        (work / META).write_text(json.dumps({**meta, "count": len(items),
                                             "dim": int(vectors.shape[1])}, indent=1))
        if manifest is not None:
            write_manifest(work, "index", manifest["spec"], manifest.get("metrics", {}),
                           train_records=items)


def read_index(directory: str | Path, what: str = "index"
               ) -> tuple[dict[str, Any], torch.Tensor, list[dict[str, Any]]]:
    """(meta, vectors [N, D], items) or a one-line ArtifactError."""
    from safetensors.torch import load_file

    from polymodal.errors import ArtifactError

    directory = Path(directory)
    try:
        meta = json.loads((directory / META).read_text())
        vectors = load_file(str(directory / VECTORS))["vectors"]
        items = [json.loads(line) for line in (directory / ITEMS).read_text().splitlines()]
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{directory}: not a readable {what} ({exc})") from None
    return meta, vectors, items


def top_k(vectors: torch.Tensor, queries: torch.Tensor, k: int
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and indices [Q, k] of the ``k`` most similar rows of ``vectors`` per query
    (vectors and queries normalised: the dot product is the cosine). Runs where
    ``vectors`` lives."""
    scores = queries.to(vectors.device, vectors.dtype) @ vectors.T
    top = scores.topk(min(k, vectors.shape[0]), dim=1)
    return top.values.cpu(), top.indices.cpu()
