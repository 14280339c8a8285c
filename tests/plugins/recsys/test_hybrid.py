"""recsys.hybrid on the embedded MovieLens: items nobody has rated (10% held out entirely)
are recommended from their titles and genres (minilm) far better than at random."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_cold_items_are_found_from_their_content(tmp_path: Path) -> None:
    out = tmp_path / "hybrid"
    result = run_cli("recsys", "hybrid", "train", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["metrics"]
    cold = summary["cold_start"]
    assert summary["cold_items"] >= 600 and summary["cold_users"] >= 300
    assert cold["recall@10"] >= 3 * cold["random_recall@10"]
    assert cold["recall@10"] > cold["popularity_recall@10"]

    # Warm users' recommendations over the whole catalogue can include the cold items.
    from polymodal_recsys.recommender import load_recommender

    recommender = load_recommender(out)
    seen_anywhere = set(recommender.seen.nonzero()[1].tolist())
    results = recommender.predict([{"user": u, "k": 50} for u in recommender.users.ids])
    cold_recommended = {item for r in results for item in r["items"]
                        if recommender.items.index[item] not in seen_anywhere}
    assert cold_recommended
