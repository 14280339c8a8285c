"""``recsys.cf`` and ``recsys.hybrid``: default specs, embedded demo, model loading."""

from __future__ import annotations

from typing import Any

from polymodal.plugin import DemoData, FitRequest, Scenario

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
    from polymodal.plugin import apply_overrides
    from polymodal_recsys.spec import parse_recsys_spec

    base = HYBRID_SPEC if name == "recsys.hybrid" else CF_SPEC
    return parse_recsys_spec(apply_overrides(dict(base), (QUICK_OVERRIDES if quick else [])
                                             + list(overrides or [])))


def recsys_demo() -> DemoData:
    """All MovieLens rows to train on (the fit cuts the spec's held-out split from them);
    ``test``: the default spec's held-out positives, what ``evaluate`` scores without
    ``--data``."""
    from polymodal_recsys.data import (
        MOVIELENS_SOURCE,
        Columns,
        movielens_rows,
        rows_interactions,
    )
    from polymodal_recsys.train import prepare

    rows = movielens_rows()
    spec = spec_for("recsys.cf")
    _, held_out, _, _ = prepare(spec, rows_interactions(rows, Columns(None, None, None,
                                                                      None)))
    examples = [{"user": str(rows[0]["userId"]), "k": 5}, {"liked": ["1", "2", "3"], "k": 5}]
    return DemoData(train=rows, test=held_out.records(), examples=examples,
                    source=MOVIELENS_SOURCE)


def fit_recsys(request: FitRequest) -> dict[str, Any]:
    """ALS (and, for hybrid, the content map for cold-start items) on the interaction rows;
    the held-out split is the spec's (``evaluation``), cut from them."""
    from polymodal.plugin import fit_events
    from polymodal_recsys.data import Columns, rows_interactions
    from polymodal_recsys.train import train_cf, train_hybrid

    spec = request.spec
    columns = Columns(spec.data.user, spec.data.item, spec.data.weight, spec.data.timestamp)
    fields = tuple(spec.hybrid.fields) if spec.hybrid else ()
    data = rows_interactions(request.train, columns, content_fields=fields,
                             source=request.source or "records")
    with fit_events(request.out_dir):
        if spec.hybrid:
            return train_hybrid(spec, data, request.out_dir, device=request.device)
        return train_cf(spec, data, request.out_dir)


def _scenario(name: str, description: str, spec: dict[str, Any]) -> Scenario:
    from polymodal_recsys.data import read_rows
    from polymodal_recsys.recommender import load_recommender
    from polymodal_recsys.spec import RecsysSpec

    return Scenario(name=name, description=description, default_spec=spec,
                    spec_model=RecsysSpec, load_demo=recsys_demo, fit=fit_recsys,
                    load_model=load_recommender, read_data=read_rows,
                    quick_overrides=QUICK_OVERRIDES,
                    quick_records=10**9)  # quick: fewer iterations, all the data


def cf_scenario() -> Scenario:
    return _scenario("recsys.cf", "implicit-feedback collaborative filtering (implicit ALS)",
                     CF_SPEC)


def hybrid_scenario() -> Scenario:
    return _scenario("recsys.hybrid", "CF + item content (minilm) for cold-start items",
                     HYBRID_SPEC)
