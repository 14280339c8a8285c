"""nlp.sentiment end to end on the embedded Amazon fine-food reviews (quick mode)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_quick_demo_beats_majority_class(tmp_path: Path) -> None:
    result = run_cli("demo", "nlp.sentiment", "--quick", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["nlp.sentiment"]
    # A linear probe on 200 reviews: AUROC on 200 held-out reviews is ~0.5 +- 0.04 by chance.
    assert summary["metrics"]["auroc"] > 0.65
    predictions = [pred for _, pred in summary["examples"]]
    # The delighted review scores higher for "great" than the disgusted one.
    assert predictions[0]["scores"]["great"] > predictions[1]["scores"]["great"]

    model = tmp_path / "nlp.sentiment"
    predicted = run_cli("nlp", "sentiment", "predict", str(model),
                        "Wonderful coffee, rich and smooth. I order it every month.")
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)
    # The label is the best-scoring one, and the scores are a distribution over both.
    assert answer["label"] == max(answer["scores"], key=answer["scores"].get)
    assert set(answer["scores"]) == {"great", "other"}
    assert abs(sum(answer["scores"].values()) - 1.0) < 1e-4


def test_unknown_scenario_is_refused(tmp_path: Path) -> None:
    result = run_cli("demo", "nlp.sentimnet", "--quick", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "'nlp.sentiment'" in result.stderr
