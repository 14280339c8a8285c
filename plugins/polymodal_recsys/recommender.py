"""A trained recommender: factors (safetensors), id maps and seen items, the spec; answers
``{"user": ID}`` or ``{"liked": [ITEM, ...]}`` (fold-in) with ``{"items", "scores"}``.

This is what ``polymodal.load(MODEL_DIR)`` returns for a recsys model directory, so
``polymodal predict`` and ``polymodal serve`` work on it like on any other model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.plugin import ArtifactError, DataError, Record

FACTORS = "factors.safetensors"
IDS = "ids.json"


class Recommender:
    def __init__(self, spec: Any, user_factors: np.ndarray, item_factors: np.ndarray,
                 users: list[str], items: list[str], seen: Any,
                 manifest: dict[str, Any] | None = None) -> None:
        from polymodal_recsys.data import IdMap

        self.spec = spec
        self.users, self.items = IdMap(users), IdMap(items)
        self.seen = seen.tocsr()
        self.manifest = manifest or {}
        self.model = _implicit_model(spec.model, user_factors, item_factors)

    # --- the Predictor interface (polymodal predict / serve) -----------------------------
    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "user", "modality": "id", "encoder": "cf"},
                {"name": "liked", "modality": "id-list", "encoder": "cf"},
                {"name": "k", "modality": "numeric", "encoder": "none"}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "recommendation", "target": "items", "items": len(self.items)}

    @property
    def scenario(self) -> str:
        return self.spec.scenario

    def predict(self, records: list[Record], batch_size: int = 1000) -> list[Record]:
        """Known users in one batched call; ``liked`` lists folded in per record."""
        results: list[Record | None] = [None] * len(records)
        known: dict[int, list[tuple[int, int]]] = {}
        for position, record in enumerate(records):
            k = _k(record, position)
            if not isinstance(record, dict):
                raise DataError(f"record {position}: expected an object")
            if record.get("user") is not None:
                user = self.users.index.get(str(record["user"]))
                if user is not None:
                    known.setdefault(k, []).append((position, user))
                    continue
                if not record.get("liked"):
                    raise DataError(f"record {position}: unknown user {record['user']!r} "
                                    "(send the items they liked as \"liked\" to fold them in)")
            if not record.get("liked"):
                raise DataError(f"record {position}: give \"user\" or \"liked\"")
            results[position] = self.recommend_for_liked(record["liked"], k, position)
        for k, pairs in known.items():
            for start in range(0, len(pairs), batch_size):
                chunk = pairs[start:start + batch_size]
                rows = np.asarray([u for _, u in chunk], dtype=np.int64)
                ids, scores = self.top_k_for_rows(rows, k)
                for (position, _), result in zip(chunk, self._results(ids, scores),
                                                 strict=True):
                    results[position] = result
        return [r for r in results if r is not None]

    def top_k_for_rows(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items of many known users at once, seen items excluded: one matrix product
        and one top-k in torch (on the GPU when there is one), no per-user loop."""
        import torch

        device = self._torch_device()
        users = torch.from_numpy(np.asarray(self.model.user_factors)[rows]).to(device)
        scores = users @ self._item_factors_on(device).T
        seen = self.seen[rows].tocoo()
        scores[torch.from_numpy(seen.row.astype(np.int64)).to(device),
               torch.from_numpy(seen.col.astype(np.int64)).to(device)] = float("-inf")
        values, ids = scores.topk(min(k, scores.shape[1]), dim=1)
        return ids.cpu().numpy(), values.float().cpu().numpy()

    def _torch_device(self) -> Any:
        import torch

        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _item_factors_on(self, device: Any) -> Any:
        import torch

        cached = getattr(self, "_items_tensor", None)
        if cached is None or cached.device != device:
            cached = torch.from_numpy(np.asarray(self.model.item_factors)).to(device)
            self._items_tensor = cached
        return cached

    def evaluate(self, records: list[Record], batch_size: int = 1000) -> dict[str, Any]:
        """Ranking metrics on held-out interaction rows (``polymodal evaluate --data``)."""
        from polymodal_recsys.data import Columns, from_rows, matrix, positives
        from polymodal_recsys.metrics import evaluate_cf

        data = self.spec.data
        header = records[0] if records else {}
        movielens = "userId" in header
        columns = Columns(data.user or ("userId" if movielens else "user"),
                          data.item or ("movieId" if movielens else "item"),
                          data.weight or ("rating" if movielens else "weight"),
                          data.timestamp or "timestamp")
        held_out = positives(from_rows(records, columns, Path("--data")), data)
        test = matrix(held_out, self.users, self.items)
        return evaluate_cf(self.model, self.seen, test, self.spec.evaluation.k)

    def recommend_for_liked(self, liked: Any, k: int, position: int = 0) -> Record:
        from scipy.sparse import csr_matrix

        if not isinstance(liked, list):
            raise DataError(f"record {position}: \"liked\" must be a list of item ids")
        columns = sorted({self.items.index[str(i)] for i in liked
                          if str(i) in self.items.index})
        if not columns:
            raise DataError(f"record {position}: none of the liked items is known")
        if self.spec.model.name != "als":
            raise DataError("folding in a new user needs an ALS model")
        row = csr_matrix((np.ones(len(columns), dtype=np.float32),
                          (np.zeros(len(columns), dtype=np.int32), columns)),
                         shape=(1, len(self.items)))
        ids, scores = self.model.recommend(0, row, N=k, recalculate_user=True)
        return self._result(ids, scores)

    def similar(self, item: str, k: int = 10) -> Record:
        index = self.items.index.get(str(item))
        if index is None:
            raise DataError(f"unknown item {item!r}")
        ids, scores = self.model.similar_items(index, N=k + 1)
        pairs = [(i, s) for i, s in zip(ids, scores, strict=True) if i != index][:k]
        return self._result(np.asarray([i for i, _ in pairs]),
                            np.asarray([s for _, s in pairs]))

    def _result(self, ids: np.ndarray, scores: np.ndarray) -> Record:
        return self._results(ids[None, :], scores[None, :])[0]

    def _results(self, ids: np.ndarray, scores: np.ndarray) -> list[Record]:
        """Rows of item indices and scores -> records of item ids and scores (vectorised:
        a thousand users cost one numpy pass, not ten thousand Python calls)."""
        names = getattr(self, "_item_names", None)
        if names is None:
            names = self._item_names = np.asarray(self.items.ids, dtype=object)
        finite = np.isfinite(scores)
        rounded = np.round(scores.astype(np.float64), 6)
        if finite.all():
            return [{"items": row_items, "scores": row_scores} for row_items, row_scores in
                    zip(names[ids].tolist(), rounded.tolist(), strict=True)]
        return [{"items": names[i[keep]].tolist(), "scores": r[keep].tolist()}
                for i, r, keep in zip(ids, rounded, finite, strict=True)]

    # --- files ---------------------------------------------------------------------------
    def save(self, directory: Path, metrics: dict[str, Any],
             train_records: list[dict[str, Any]]) -> None:
        """Write the model directory atomically (``DIR.partial`` renamed at the end)."""
        from safetensors.numpy import save_file

        from polymodal.plugin import building_directory, write_manifest

        with building_directory(directory) as work:
            save_file({"user_factors": _dense(self.model.user_factors),
                       "item_factors": _dense(self.model.item_factors),
                       "seen_indptr": self.seen.indptr.astype(np.int64),
                       "seen_indices": self.seen.indices.astype(np.int64),
                       "seen_data": self.seen.data.astype(np.float32)},
                      str(work / FACTORS))
            (work / IDS).write_text(json.dumps({"users": self.users.ids,
                                                "items": self.items.ids}))
            write_manifest(work, "recsys", self.spec.model_dump(mode="json"), metrics,
                           train_records=train_records)


def _k(record: Any, position: int) -> int:
    k = record.get("k", 10) if isinstance(record, dict) else 10
    if isinstance(k, bool) or not isinstance(k, int | float) or k < 1 or k != int(k):
        raise DataError(f"record {position}: k must be a positive whole number")
    return int(min(k, 1000))


def _dense(matrix: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(matrix, dtype=np.float32))


def _implicit_model(spec: Any, user_factors: np.ndarray, item_factors: np.ndarray) -> Any:
    from polymodal_recsys.model import build_implicit_model

    model = build_implicit_model(spec)
    model.user_factors = user_factors
    model.item_factors = item_factors
    return model


def load_recommender(directory: str | Path, device: str | None = None,
                     precision: str = "fp32") -> Recommender:
    """A recsys model directory (factors and ids; no unpickling)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    from scipy.sparse import csr_matrix

    from polymodal.plugin import read_manifest
    from polymodal_recsys.spec import parse_recsys_spec

    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = parse_recsys_spec(manifest["spec"])
    try:
        tensors = load_file(str(directory / FACTORS))
        ids = json.loads((directory / IDS).read_text())
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: unreadable recommender files: {exc}") from None
    users, items = ids["users"], ids["items"]
    seen = csr_matrix((tensors["seen_data"], tensors["seen_indices"], tensors["seen_indptr"]),
                      shape=(len(users), len(items)))
    return Recommender(spec, tensors["user_factors"], tensors["item_factors"], users, items,
                       seen, manifest)
