"""Ranking metrics at k over held-out interactions.

precision, map, ndcg and auc follow ``implicit.evaluation.ranking_metrics_at_k`` exactly
(precision divides the hits by min(k, |held-out|), summed over users; a test checks equality
with implicit's own function); recall@k (hits / |held-out|, averaged over users) and
catalogue coverage (distinct recommended items / items) are ours.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal_recsys.model import Popularity

BATCH_USERS = 1000


def recommend_all(model: Any, train: Any, users: np.ndarray, k: int) -> np.ndarray:
    """Top-k item ids for each user (seen items filtered), batched."""
    chunks = []
    for start in range(0, len(users), BATCH_USERS):
        batch = users[start:start + BATCH_USERS]
        ids, _ = model.recommend(batch, train[batch], N=k, filter_already_liked_items=True)
        chunks.append(np.asarray(ids).reshape(len(batch), -1))
    return np.concatenate(chunks) if chunks else np.zeros((0, k), dtype=np.int64)


def ranking_metrics(model: Any, train: Any, test: Any, k: int = 10) -> dict[str, float]:
    test = test.tocsr()
    users = np.flatnonzero(np.diff(test.indptr))
    if not len(users):
        return {}
    recommended = recommend_all(model, train.tocsr(), users, k)
    n_items = test.shape[1]
    gains = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(gains)
    relevant = precision_div = 0.0
    total_ap = total_ndcg = total_auc = total_recall = 0.0
    for row, user in enumerate(users):
        liked = set(test.indices[test.indptr[user]:test.indptr[user + 1]].tolist())
        n_pos = len(liked)
        n_neg = n_items - n_pos
        precision_div += min(k, n_pos)
        hits = misses = 0
        ap = ndcg = auc = 0.0
        for rank, item in enumerate(recommended[row][:k]):
            if int(item) in liked:
                hits += 1
                ap += hits / (rank + 1)
                ndcg += gains[rank] / ideal[min(k, n_pos) - 1]
            else:
                misses += 1
                auc += hits
        auc += ((hits + n_pos) / 2.0) * (n_neg - misses)
        relevant += hits
        total_ap += ap / min(k, n_pos)
        total_ndcg += ndcg
        total_auc += auc / (n_pos * n_neg)
        total_recall += hits / n_pos
    n = len(users)
    return {f"precision@{k}": float(relevant / precision_div),
            f"recall@{k}": float(total_recall / n), f"map@{k}": float(total_ap / n),
            f"ndcg@{k}": float(total_ndcg / n), "auc": float(total_auc / n),
            f"coverage@{k}": len(np.unique(recommended)) / n_items, "users": int(n)}


def recall_on_items(recommended: np.ndarray, test: Any, items: np.ndarray) -> float:
    """Mean over users with held-out interactions on ``items`` of the share of those found
    in their recommendations (cold-start evaluation)."""
    test = test.tocsr()[:, items]
    wanted = set(items.tolist())
    total, users = 0.0, 0
    for user in range(test.shape[0]):
        liked = {int(items[j]) for j in test.indices[test.indptr[user]:test.indptr[user + 1]]}
        if not liked:
            continue
        found = sum(1 for item in recommended[user] if int(item) in liked and
                    int(item) in wanted)
        total += found / len(liked)
        users += 1
    return float(total / users) if users else 0.0


def evaluate_cf(model: Any, train_matrix: Any, test_matrix: Any, k: int) -> dict[str, Any]:
    """A model's ranking metrics beside the popularity baseline's, on the same split."""
    ours = ranking_metrics(model, train_matrix, test_matrix, k)
    baseline = ranking_metrics(Popularity(train_matrix), train_matrix, test_matrix, k)
    ratio = ours[f"precision@{k}"] / baseline[f"precision@{k}"] \
        if baseline.get(f"precision@{k}") else None
    return {**ours, "popularity": baseline, "precision_vs_popularity": ratio}
