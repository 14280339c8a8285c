"""Train and evaluate recommenders: CF on a split with the popularity baseline beside it,
the hybrid cold-start model, and hyper-parameter tuning on a validation split."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.plugin import DataError
from polymodal_recsys.data import IdMap, Interactions, matrix, positives, split
from polymodal_recsys.metrics import evaluate_cf, ranking_metrics, recall_on_items
from polymodal_recsys.model import check_weights, fit, limit_blas_threads
from polymodal_recsys.recommender import Recommender


def prepare(spec: Any, data: Interactions) -> tuple[Interactions, Interactions, IdMap, IdMap]:
    """Positives, then the spec's split; id maps over every user and item seen."""
    data = positives(data, spec.data)
    train, test = split(data, spec.evaluation.split, spec.evaluation.test_fraction,
                        spec.evaluation.seed)
    if not len(train):
        raise DataError("the split left no training interactions")
    return train, test, IdMap.of(data.users), IdMap.of(data.items)


def train_cf(spec: Any, data: Interactions, out_dir: Path | None = None) -> dict[str, Any]:
    """Fit on the training split, score the test split; write the model if ``out_dir``."""
    limit_blas_threads()
    train, test, users, items = prepare(spec, data)
    train_matrix = matrix(train, users, items)
    check_weights(train_matrix)
    start = time.perf_counter()
    model = fit(train_matrix, spec.model)
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"fit_seconds": round(seconds, 3), "users": len(users),
                               "items": len(items), "train_interactions": len(train),
                               "test_interactions": len(test)}
    if len(test):
        metrics["test"] = evaluate_cf(model, train_matrix, matrix(test, users, items),
                                      spec.evaluation.k)
    if out_dir is not None:
        Recommender(spec, model.user_factors, model.item_factors, users.ids, items.ids,
                    train_matrix).save(Path(out_dir), metrics, train.records())
    return metrics


def content_text(item_content: dict[str, Any], fields: list[str]) -> str:
    parts = []
    for name in fields:
        value = item_content.get(name)
        if value not in (None, ""):
            parts.append(str(value).replace("|", ", "))
    return ". ".join(parts)


def train_hybrid(spec: Any, data: Interactions, out_dir: Path | None = None,
                 device: str | None = None) -> dict[str, Any]:
    """Hold out ``cold_fraction`` of the items entirely, fit CF on the rest, map content
    embeddings (registered encoder) to item factors by ridge regression, and measure how well
    warm users' held-out interactions with the cold items are recovered."""
    from polymodal.plugin import embed_values

    limit_blas_threads()
    hybrid = spec.hybrid
    data = positives(data, spec.data)
    users, items = IdMap.of(data.users), IdMap.of(data.items)
    missing = [i for i in items.ids if i not in data.item_content]
    if missing:
        raise DataError(f"no content ({', '.join(hybrid.fields)}) for item {missing[0]!r}")
    rng = np.random.default_rng(spec.evaluation.seed)
    cold = np.sort(rng.choice(len(items), size=max(1, round(hybrid.cold_fraction * len(items))),
                              replace=False))
    is_cold = np.zeros(len(items), dtype=bool)
    is_cold[cold] = True
    item_rows = np.asarray([items.index[i] for i in data.items])
    warm_data = data.select(~is_cold[item_rows])
    cold_data = data.select(is_cold[item_rows])
    train, test = split(warm_data, spec.evaluation.split, spec.evaluation.test_fraction,
                        spec.evaluation.seed)
    train_matrix = matrix(train, users, items)
    model = fit(train_matrix, spec.model)
    item_factors = np.asarray(model.item_factors, dtype=np.float32).copy()

    texts = [content_text(data.item_content[i], hybrid.fields) for i in items.ids]
    embeddings = embed_values(texts, encoder=hybrid.encoder, modality="text",
                              options=hybrid.encoder_options, source=hybrid.encoder_source,
                              device=device).numpy()
    warm = np.flatnonzero(~is_cold & (np.asarray(train_matrix.sum(axis=0)).ravel() > 0))
    features = np.hstack([embeddings, np.ones((len(items), 1), dtype=np.float32)])
    x = features[warm]
    gram = x.T @ x + hybrid.ridge_alpha * np.eye(x.shape[1], dtype=np.float32)
    weights = np.linalg.solve(gram, x.T @ item_factors[warm])
    item_factors[cold] = features[cold] @ weights
    model.item_factors = item_factors

    k = spec.evaluation.k
    cold_matrix = matrix(cold_data, users, items)
    user_rows = np.flatnonzero(np.diff(cold_matrix.tocsr().indptr))
    user_factors = np.asarray(model.user_factors)
    scores = user_factors[user_rows] @ item_factors[cold].T
    ranked = cold[np.argsort(-scores, axis=1)[:, :k]]
    recommended = np.zeros((len(users), k), dtype=np.int64)
    recommended[user_rows] = ranked
    ours = recall_on_items(recommended, cold_matrix, cold)
    genre_pop = _genre_popularity(data, items, train_matrix, cold, hybrid.fields)
    pop_ranked = cold[np.argsort(-genre_pop, kind="stable")[:k]]
    recommended_pop = np.zeros_like(recommended)
    recommended_pop[user_rows] = pop_ranked
    popularity = recall_on_items(recommended_pop, cold_matrix, cold)
    random_recall = min(1.0, k / len(cold))
    metrics: dict[str, Any] = {
        "cold_items": int(len(cold)), "cold_users": int(len(user_rows)),
        "cold_start": {f"recall@{k}": ours, f"popularity_recall@{k}": popularity,
                       f"random_recall@{k}": random_recall,
                       "vs_random": ours / random_recall if random_recall else None},
    }
    if len(test):
        metrics["test"] = evaluate_cf(model, train_matrix, matrix(test, users, items), k)
    if out_dir is not None:
        Recommender(spec, model.user_factors, item_factors, users.ids, items.ids,
                    train_matrix).save(Path(out_dir), metrics, train.records())
    return metrics


def _genre_popularity(data: Interactions, items: IdMap, train_matrix: Any, cold: np.ndarray,
                      fields: list[str]) -> np.ndarray:
    """Popularity for items nobody has used: the mean interaction count of warm items that
    share a genre (the non-personal baseline a catalogue without history can have)."""
    counts = np.asarray((train_matrix > 0).sum(axis=0)).ravel()
    field = "genres" if "genres" in fields else fields[-1]
    genre_counts: dict[str, list[float]] = {}
    cold_set = set(cold.tolist())
    for index, item in enumerate(items.ids):
        if index in cold_set:
            continue
        for genre in str(data.item_content[item].get(field) or "").split("|"):
            genre_counts.setdefault(genre, []).append(float(counts[index]))
    means = {g: float(np.mean(v)) for g, v in genre_counts.items()}
    return np.asarray([np.mean([means.get(g, 0.0) for g in
                                str(data.item_content[items.ids[i]].get(field) or "")
                                .split("|")]) for i in cold])


TUNE_GRID: dict[str, list[Any]] = {
    "factors": [16, 32, 64, 128], "regularization": [0.01, 0.05, 0.1, 0.5],
    "iterations": [15, 30], "weighting": ["bm25", "tfidf", "alpha"], "alpha": [1.0, 5.0, 20.0]}


def tune(spec: Any, data: Interactions, max_trials: int = 24) -> tuple[Any, list[dict]]:
    """Search the grid (a seeded sample of it) on a validation split carved from the
    training split by the same rule; the test split is never looked at."""
    limit_blas_threads()
    train, _, users, items = prepare(spec, data)
    inner_train, validation = split(train, spec.evaluation.split,
                                    spec.evaluation.test_fraction, spec.evaluation.seed)
    train_matrix = matrix(inner_train, users, items)
    validation_matrix = matrix(validation, users, items)
    combos = list(itertools.product(*TUNE_GRID.values()))
    rng = np.random.default_rng(spec.evaluation.seed)
    picked = [combos[i] for i in sorted(rng.choice(len(combos),
                                                   size=min(max_trials, len(combos)),
                                                   replace=False))]
    k = spec.evaluation.k
    trials = []
    for values in picked:
        settings = dict(zip(TUNE_GRID, values, strict=True))
        candidate = spec.model.model_copy(update=settings)
        model = fit(train_matrix, candidate)
        score = ranking_metrics(model, train_matrix, validation_matrix, k)[f"precision@{k}"]
        trials.append({**settings, f"validation_precision@{k}": score})
    best = max(trials, key=lambda t: t[f"validation_precision@{k}"])
    settings = {key: best[key] for key in TUNE_GRID}
    return spec.model_copy(update={"model": spec.model.model_copy(update=settings)}), trials
