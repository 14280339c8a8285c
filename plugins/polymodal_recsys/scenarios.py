"""``recsys.cf`` and ``recsys.hybrid``: default specs, embedded demo, model loading."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from polymodal.scenario import DemoSummary, Scenario

# Tuned with `polymodal recsys cf tune` on a validation split carved from the training
# split (docs/recsys.md has the search and its result).
CF_SPEC: dict[str, Any] = {
    "name": "movielens-cf",
    "scenario": "recsys.cf",
    "data": {"positive_threshold": "auto"},
    "model": {"name": "als", "factors": 16, "regularization": 0.05, "iterations": 15,
              "weighting": "alpha", "alpha": 1.0},
    "evaluation": {"split": "temporal", "test_fraction": 0.2, "k": 10},
}
HYBRID_SPEC: dict[str, Any] = {**CF_SPEC, "name": "movielens-hybrid",
                               "scenario": "recsys.hybrid",
                               "hybrid": {"fields": ["title", "genres"], "encoder": "minilm"}}
QUICK_OVERRIDES = ["model.iterations=3", "model.factors=8"]


def spec_for(name: str, overrides: list[str] | None = None, quick: bool = False) -> Any:
    from polymodal.spec import apply_overrides
    from polymodal_recsys.spec import parse_recsys_spec

    base = HYBRID_SPEC if name == "recsys.hybrid" else CF_SPEC
    return parse_recsys_spec(apply_overrides(dict(base), (QUICK_OVERRIDES if quick else [])
                                             + list(overrides or [])))


def run_demo(name: str, out_dir: Path, quick: bool = False,
             device: str | None = None) -> DemoSummary:
    from polymodal_recsys.data import movielens_demo
    from polymodal_recsys.recommender import load_recommender
    from polymodal_recsys.train import train_cf, train_hybrid

    spec = spec_for(name, quick=quick)
    start = time.perf_counter()
    data = movielens_demo()
    if name == "recsys.hybrid":
        metrics = train_hybrid(spec, data, out_dir, device=device)
    else:
        metrics = train_cf(spec, data, out_dir)
    recommender = load_recommender(out_dir)
    examples = [{"user": recommender.users.ids[0], "k": 5},
                {"liked": ["1", "2", "3"], "k": 5}]
    return DemoSummary.of(out_dir, time.perf_counter() - start, metrics,
                          list(zip(examples, recommender.predict(examples), strict=True)))


def _scenario(name: str, description: str, spec: dict[str, Any]) -> Scenario:
    from polymodal_recsys.recommender import load_recommender

    return Scenario(name=name, description=description, default_spec=spec,
                    run_demo=lambda out_dir, quick=False, device=None:
                    run_demo(name, Path(out_dir), quick, device),
                    load_model=load_recommender)


def cf_scenario() -> Scenario:
    return _scenario("recsys.cf", "implicit-feedback collaborative filtering (implicit ALS)",
                     CF_SPEC)


def hybrid_scenario() -> Scenario:
    return _scenario("recsys.hybrid", "CF + item content (minilm) for cold-start items",
                     HYBRID_SPEC)
