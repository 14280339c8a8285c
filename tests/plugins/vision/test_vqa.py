"""vision.vqa quick run: image + question through a core fusion, trains and answers."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_vqa_quick_demo_answers_from_the_answer_set(tmp_path: Path) -> None:
    result = run_cli("demo", "vision.vqa", "--quick", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["vision.vqa"]
    answers = {"red", "green", "blue", "yellow", "circle", "square", "triangle", "yes", "no",
               "1", "2", "3"}
    for record, prediction in summary["examples"]:
        assert record["question"].endswith("?")
        assert prediction["label"] in answers
    # "how many shapes" is learnable in one epoch on 200 records; the rest is not yet.
    assert summary["metrics"]["accuracy"] > 0.25
