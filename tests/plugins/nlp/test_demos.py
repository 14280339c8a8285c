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
    assert summary["nlp.search"]["test"]["recall@1"] >= 0.8  # 40 documents, frozen MiniLM
    assert summary["nlp.generate"]["test"]["perplexity"] < \
        summary["nlp.generate"]["test"]["perplexity_before"]
    assert len(summary["nlp.generate"]["examples"]) == 2
    assert "entities" in summary["nlp.ner"]["examples"][0]
    assert "answer" in summary["nlp.qa"]["examples"][0]
    for name in SCENARIOS:
        assert (tmp_path / name / "polymodal.yaml").is_file(), name
