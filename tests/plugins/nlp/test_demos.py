"""`polymodal demo --quick` runs every NLP scenario's embedded default end to end."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

SCENARIOS = ["nlp.ner", "nlp.qa", "nlp.search", "nlp.generate", "nlp.classify"]


def test_quick_demos(tmp_path: Path) -> None:
    result = run_cli("demo", *SCENARIOS, "--quick", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) == set(SCENARIOS)
    for item in summary.values():  # one summary shape for every kind of scenario
        assert {"out", "seconds", "metrics", "examples"} <= set(item)
    assert summary["nlp.search"]["metrics"]["recall@1"] >= 0.8  # 40 documents, MiniLM
    assert summary["nlp.generate"]["metrics"]["perplexity"] < \
        summary["nlp.generate"]["metrics"]["perplexity_before"]
    assert len(summary["nlp.generate"]["examples"]) == 2
    assert "entities" in summary["nlp.ner"]["examples"][0][1]
    assert "answer" in summary["nlp.qa"]["examples"][0][1]
    for name in SCENARIOS:
        assert (tmp_path / name / "polymodal.yaml").is_file(), name


def test_the_human_readable_demo_prints_what_json_does(tmp_path: Path) -> None:
    """The plain ``polymodal demo`` once crashed after training (KeyError: 'metrics') for
    the scenarios that train their own kind of model."""
    result = run_cli("demo", "nlp.search", "nlp.generate", "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for text in ("demo: held-out metrics", "nlp.search", "recall@1", "nlp.generate",
                 "perplexity", "nlp.search: example predictions", "This coffee"):
        assert text in result.stdout, text
