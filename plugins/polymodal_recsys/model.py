"""Collaborative filtering on ``implicit``: confidence weighting, fit, batch recommendation,
similar items, fold-in of unknown users, and a popularity baseline with the same interface
(so ``implicit.evaluation`` scores both)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from polymodal.plugin import DataError


def limit_blas_threads() -> None:
    """implicit's README: its own threads plus a multithreaded BLAS oversubscribe the cores,
    so BLAS gets one thread. ``OPENBLAS_NUM_THREADS=1`` is set when numpy is not loaded yet;
    otherwise the loaded BLAS libraries are limited through threadpoolctl, and a warning says
    so when that is not possible."""
    import sys

    if "numpy" not in sys.modules:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        return
    import implicit.cpu.als  # noqa: F401  - load every BLAS implicit will use, then limit
    import scipy.sparse.linalg  # noqa: F401

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
            warnings.warn("set OPENBLAS_NUM_THREADS=1 before starting (numpy was already "
                          "loaded): implicit runs slower with a multithreaded BLAS",
                          stacklevel=2)
        return
    threadpool_limits(1, "blas")


def weigh(user_items: Any, spec: Any) -> Any:
    """The confidence matrix fit() sees, as implicit's docs recommend."""
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    if spec.weighting == "bm25":
        return bm25_weight(user_items, K1=spec.bm25_k1, B=spec.bm25_b).tocsr()
    if spec.weighting == "tfidf":
        return tfidf_weight(user_items).tocsr()
    if spec.weighting == "alpha":
        return (user_items * spec.alpha).tocsr()
    return user_items.tocsr()


def build_implicit_model(spec: Any, use_gpu: bool = False) -> Any:
    limit_blas_threads()
    import implicit

    common = {"factors": spec.factors, "regularization": spec.regularization,
              "iterations": spec.iterations, "random_state": spec.seed}
    if spec.name == "als":
        return implicit.als.AlternatingLeastSquares(
            **common, alpha=spec.alpha if spec.weighting != "alpha" else 1.0,
            use_gpu=use_gpu, calculate_training_loss=False)
    if spec.name == "bpr":
        return implicit.bpr.BayesianPersonalizedRanking(
            **common, learning_rate=spec.learning_rate, use_gpu=use_gpu)
    return implicit.lmf.LogisticMatrixFactorization(
        **common, learning_rate=spec.learning_rate, use_gpu=use_gpu)


def gpu_available() -> bool:
    try:
        import implicit.gpu

        return bool(implicit.gpu.HAS_CUDA)
    except ImportError:
        return False


def fit(user_items: Any, spec: Any) -> Any:
    """Fit on the (unweighted) users x items matrix; returns a CPU model."""
    model = build_implicit_model(spec, use_gpu=gpu_available())
    model.fit(weigh(user_items, spec), show_progress=False)
    return model.to_cpu() if hasattr(model, "to_cpu") and gpu_available() else model


class Popularity:
    """Most-interacted items first; ``recommend`` matches implicit's signature."""

    def __init__(self, user_items: Any) -> None:
        self.counts = np.asarray((user_items > 0).sum(axis=0)).ravel().astype(np.float32)

    def recommend(self, userid: Any, user_items: Any, N: int = 10,
                  filter_already_liked_items: bool = True, filter_items: Any = None,
                  recalculate_user: bool = False, items: Any = None) -> tuple[Any, Any]:
        users = np.atleast_1d(userid)
        scores = np.tile(self.counts, (len(users), 1))
        return top_k(scores, user_items if filter_already_liked_items else None, N,
                     single=np.ndim(userid) == 0)


def top_k(scores: np.ndarray, seen: Any, n: int, single: bool = False) -> tuple[Any, Any]:
    """Top-n columns of each row of ``scores``, seen items (CSR rows) excluded."""
    scores = scores.astype(np.float32, copy=True)
    if seen is not None:
        seen = seen.tocsr()
        for row in range(scores.shape[0]):
            scores[row, seen.indices[seen.indptr[row]:seen.indptr[row + 1]]] = -np.inf
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int32)
    values = np.take_along_axis(scores, ids, axis=1)
    if single:
        return ids[0], values[0]
    return ids, values


def check_weights(user_items: Any) -> None:
    if user_items.nnz and user_items.data.min() < 0:
        raise DataError("negative weights: confidences must be >= 0")
