"""A loaded nlp.search index: queries embedded with the index's encoder, top k by cosine
(what ``polymodal.load`` returns for a search index directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import BasePredictor, DataError, Record


def query_vectors(texts: list[str], encoder: dict[str, Any], device: str | None) -> torch.Tensor:
    from polymodal.plugin import embed_values

    vectors = embed_values(texts, encoder=encoder["encoder"], modality="text",
                           options=encoder.get("options"), source=encoder.get("source"),
                           device=device)
    return torch.nn.functional.normalize(vectors, dim=-1)


class SearchIndex(BasePredictor):
    """A loaded index (what ``polymodal.load`` returns for an nlp.search directory):
    ``{"query", "k"?}`` -> ``{"results": [{"id", "score", "text"}, ...]}``."""

    scenario = "nlp.search"

    def __init__(self, directory: str | Path, device: str | None = None,
                 precision: str = "fp32") -> None:
        from polymodal.plugin import pick_device, read_index

        super().__init__(None, pick_device(device), precision)
        self.meta, vectors, self.items = read_index(directory, "search index")
        self.vectors = vectors.to(self.device)
        self.encoder = self.meta["encoder"]

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "query", "modality": "text", "encoder": self.encoder["encoder"]}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "search", "target": "results", "documents": len(self.items)}

    def validate(self, records: list[Record]) -> None:
        super().validate(records)
        for index, record in enumerate(records):
            query = record.get("query")
            if not isinstance(query, str) or not query.strip():
                raise DataError(f"query {index}: empty or not text")
            k = record.get("k", 5)
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise DataError(f"query {index}: \"k\" must be a positive integer")

    def search(self, queries: list[str], k: int = 5) -> list[list[Record]]:
        return [r["results"] for r in self.predict([{"query": q, "k": k} for q in queries])]

    def batches(self, records: list[Record], batch_size: int) -> list[list[int]]:
        groups: dict[int, list[int]] = {}
        for index, record in enumerate(records):
            groups.setdefault(int(record.get("k", 5)), []).append(index)
        return [indices[i:i + batch_size] for indices in groups.values()
                for i in range(0, len(indices), batch_size)]

    def preprocess(self, records: list[Record]) -> dict[str, Any]:
        return {"queries": query_vectors([r["query"] for r in records], self.encoder,
                                    str(self.device)),
                "k": int(records[0].get("k", 5))}

    def forward(self, batch: dict[str, Any]) -> Any:
        from polymodal.plugin import top_k

        return top_k(self.vectors, batch["queries"], batch["k"])

    def postprocess(self, outputs: Any, batch: Any, records: list[Record]) -> list[Record]:
        scores, indices = outputs
        return [{"results": [{"id": self.items[i]["id"], "score": round(float(s), 4),
                              "text": self.items[i]["text"]}
                             for s, i in zip(row_scores, row_indices.tolist(), strict=True)]}
                for row_scores, row_indices in zip(scores, indices, strict=True)]

    def evaluate(self, records: list[Record], batch_size: int = 64) -> dict[str, Any]:
        """Recall@1/5/10 and MRR@10 over ``{"query", "id"}`` (the relevant document)."""
        if not records or any("query" not in r or "id" not in r for r in records):
            raise DataError("evaluation records need \"query\" and \"id\"")
        known = {str(item["id"]) for item in self.items}
        missing = [r["id"] for r in records if str(r["id"]) not in known]
        if missing:
            raise DataError(f"query ids not in the index: {', '.join(map(str, missing[:5]))}")
        hits = self.search([r["query"] for r in records], 10)
        ranks = []
        for record, results in zip(records, hits, strict=True):
            ids = [str(h["id"]) for h in results]
            ranks.append(ids.index(str(record["id"])) + 1 if str(record["id"]) in ids else None)
        n = len(records)
        out: dict[str, Any] = {f"recall@{k}": sum(1 for r in ranks if r and r <= k) / n
                               for k in (1, 5, 10)}
        out["mrr@10"] = sum(1 / r for r in ranks if r) / n
        out["n"], out["documents"] = n, len(self.items)
        return out


def load_search(directory: str | Path, device: str | None = None,
                precision: str = "fp32") -> SearchIndex:
    return SearchIndex(directory, device, precision)


