"""nlp.search: index documents with the shared MiniLM, query by meaning, evaluate recall,
serve the index through the core; bad documents are refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    from polymodal_nlp.search_corpus import documents, queries

    folder = tmp_path_factory.mktemp("search")
    docs = documents()[:80]
    kept = {d["id"] for d in docs}
    asked = [q for q in queries() if q["id"] in kept]
    (folder / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in asked))
    result = run_cli("nlp", "search", "index", str(folder / "docs.jsonl"), "--out",
                     str(folder / "index"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["documents"] == 80
    return folder, asked


def test_query_finds_the_document_by_meaning(index) -> None:  # type: ignore[no-untyped-def]
    folder, _ = index
    result = run_cli("nlp", "search", "query", str(folder / "index"),
                     "my sweater shrank in the washing machine", "-k", "3", "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["results"]
    assert len(hits) == 3 and hits[0]["id"] == "laundry-shrink"
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_recall_at_1_over_written_queries(index) -> None:  # type: ignore[no-untyped-def]
    folder, asked = index
    result = run_cli("nlp", "search", "evaluate", str(folder / "index"), "--data",
                     str(folder / "queries.jsonl"), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] == len(asked) >= 40
    assert metrics["recall@1"] >= 0.8 and metrics["recall@5"] >= metrics["recall@1"]


def test_index_is_a_servable_model(index) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from polymodal.serving.app import create_app

    folder, _ = index
    with TestClient(create_app([str(folder / "index")])) as client:
        name = client.get("/v1/models").json()["models"][0]["name"]
        answer = client.post(f"/v1/models/{name}/predict",
                             json={"records": [{"query": "how do I stop ants in my kitchen"}]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["results"][0]["id"] == "ants-kitchen"
        empty = client.post(f"/v1/models/{name}/predict", json={"records": [{"query": ""}]})
        assert empty.status_code in (400, 422) and "query" in empty.text
        assert client.get("/health").status_code == 200


def test_bad_documents_write_nothing(tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": ""}\n')
    out = tmp_path / "index"
    result = run_cli("nlp", "search", "index", str(docs), "--out", str(out))
    assert result.returncode == 2
    assert "document 1 (b): 'text' is empty or missing" in result.stderr
    assert not out.exists()
    docs.write_text('{"id": "a", "text": "one"}\n{"id": "a", "text": "two"}\n')
    result = run_cli("nlp", "search", "index", str(docs), "--out", str(out))
    assert result.returncode == 2 and "id 'a' appears twice" in result.stderr
