"""The recommendation spec: data columns, confidence weighting, model and evaluation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from polymodal.plugin import SpecError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    # Column names; None: user/item/weight/timestamp, or MovieLens's userId/movieId/rating/
    # timestamp when the file has a userId column (u.data has no header: always found).
    user: str | None = None
    item: str | None = None
    weight: str | None = None
    timestamp: str | None = None
    # Weights >= this are the positives (any weight column); null keeps every event; "auto":
    # ratings >= 4 for explicit ratings (a "rating" column, as in MovieLens), every event
    # for implicit weights (clicks, plays).
    positive_threshold: float | Literal["auto"] | None = "auto"


class ModelSpec(_Strict):
    name: Literal["als", "bpr", "lmf"] = "als"
    factors: int = 64
    regularization: float = 0.01
    iterations: int = 15
    learning_rate: float = 0.01  # bpr / lmf
    weighting: Literal["bm25", "tfidf", "alpha", "none"] = "bm25"
    alpha: float = 1.0  # confidence = alpha * weight ("alpha" weighting; ALS's own alpha)
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    seed: int = 0


class EvalSpec(_Strict):
    split: Literal["temporal", "leave_last_out", "random"] = "temporal"
    test_fraction: float = 0.2
    k: int = 10
    seed: int = 0


class HybridSpec(_Strict):
    """Cold start: items' content encoded by a registered encoder, mapped to factors."""

    fields: list[str] = ["title", "genres"]
    encoder: str = "minilm"
    encoder_source: str | None = None  # a local checkpoint folder, for encoders that take one
    encoder_options: dict[str, Any] = {"max_length": 64}
    mapper: Literal["ridge"] = "ridge"
    ridge_alpha: float = 1.0
    cold_fraction: float = 0.1


class RecsysSpec(_Strict):
    name: str = "recsys"
    scenario: str = "recsys.cf"
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    evaluation: EvalSpec = EvalSpec()
    hybrid: HybridSpec | None = None


def parse_recsys_spec(data: dict[str, Any]) -> RecsysSpec:
    try:
        return RecsysSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SpecError(f"spec {where}: {first['msg']}") from None
