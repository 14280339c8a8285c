"""``nlp.search``: semantic search. Documents (``{"id", "text"}``) are embedded once with a
registered text encoder (the shared, frozen ``minilm`` by default: mean pooling, then
normalised), stored as a core vector index; a query is embedded the same way and the top k
documents by cosine similarity come back with their ids.

``polymodal nlp search index DOCS.jsonl --out IDX``, ``... query IDX "question" -k 5``,
``... evaluate IDX --queries Q.jsonl`` (recall@1/5/10 and MRR over ``{"query", "id"}``).
An index directory is also a model directory: ``polymodal predict`` / ``serve`` answer
``{"query": ...}`` records with their top hits."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ConfigDict, Field

from polymodal.plugin import (
    DataError,
    DemoData,
    FitRequest,
    Record,
    Scenario,
    json_option,
    out_dir_option,
)

DEFAULT_ENCODER = {"encoder": "minilm", "options": {"max_length": 256}}


def check_documents(records: list[Record], id_field: str, text_field: str) -> list[Record]:
    seen: set[str] = set()
    for index, record in enumerate(records):
        doc_id, text = record.get(id_field), record.get(text_field)
        if doc_id is None:
            raise DataError(f"document {index}: no {id_field!r}")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"document {index} ({doc_id}): {text_field!r} is empty or missing")
        if str(doc_id) in seen:
            raise DataError(f"document {index}: id {doc_id!r} appears twice")
        seen.add(str(doc_id))
    return records


def build_index(records: list[Record], out_dir: str | Path, *, id_field: str = "id",
                text_field: str = "text", encoder: dict[str, Any] | None = None,
                device: str | None = None,
                spec: dict[str, Any] | None = None) -> dict[str, Any]:
    from polymodal.plugin import write_index

    encoder = encoder or DEFAULT_ENCODER
    check_documents(records, id_field, text_field)
    started = time.perf_counter()
    from polymodal_nlp.search_index import query_vectors

    vectors = query_vectors([r[text_field] for r in records], encoder, device)
    items = [{"id": r[id_field], "text": r[text_field]} for r in records]
    spec = spec or {"name": "search-index", "scenario": "nlp.search", "encoder": encoder,
                    "id_field": id_field, "text_field": text_field}
    write_index(out_dir, vectors, items, {"encoder": encoder},
                manifest={"spec": spec, "metrics": {"documents": len(items)}})
    return {"documents": len(items), "seconds": round(time.perf_counter() - started, 2)}


def lexical_baseline(documents: list[Record], queries: list[Record]) -> dict[str, Any]:
    """Recall@1/5 of TF-IDF cosine (scikit-learn) over the same documents and queries."""
    import torch
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english")
    docs = vectorizer.fit_transform([d["text"] for d in documents])
    scores = torch.tensor((vectorizer.transform([q["query"] for q in queries]) @ docs.T)
                          .toarray())
    order = scores.argsort(dim=1, descending=True)[:, :5].tolist()
    ids = [str(d["id"]) for d in documents]
    ranks = [[ids[i] for i in row].index(str(q["id"])) + 1
             if str(q["id"]) in [ids[i] for i in row] else None
             for row, q in zip(order, queries, strict=True)]
    return {f"recall@{k}": sum(1 for r in ranks if r and r <= k) / len(queries)
            for k in (1, 5)}


class SearchSpec(BaseModel):
    """Spec of an nlp.search index: the registered text encoder that embeds documents and
    queries, and the document fields."""

    model_config = ConfigDict(extra="forbid")
    name: str = "search-index"
    scenario: str = "nlp.search"
    encoder: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_ENCODER))
    id_field: str = "id"
    text_field: str = "text"


def search_demo() -> DemoData:
    from polymodal_nlp.search_corpus import documents, queries

    asked = queries()
    return DemoData(train=documents(), test=asked,
                    examples=[{"query": q["query"]} for q in asked[:2]],
                    source="the project's documents and queries (polymodal_nlp.search_corpus)")


def fit_search(request: FitRequest) -> dict[str, Any]:
    """Build the index of the training documents and score it on the test queries (those
    about indexed documents) beside the TF-IDF baseline; train_start/train_end go to the
    plugins as for any fit."""
    from polymodal.plugin import fit_events, write_manifest

    spec: SearchSpec = request.spec
    with fit_events(request.out_dir):
        built = build_index(request.train, request.out_dir, id_field=spec.id_field,
                            text_field=spec.text_field, encoder=spec.encoder,
                            device=request.device, spec=spec.model_dump(mode="json"))
    docs = [{"id": r[spec.id_field], "text": r[spec.text_field]} for r in request.train]
    metrics: dict[str, Any] = {"documents": built["documents"], "seconds": built["seconds"]}
    indexed = {str(d["id"]) for d in docs}
    asked = [q for q in request.test or [] if str(q.get("id")) in indexed]
    if asked:
        from polymodal_nlp.search_index import SearchIndex

        metrics["test"] = SearchIndex(request.out_dir, request.device).evaluate(asked)
        metrics["baselines"] = {"TF-IDF": lexical_baseline(docs, asked)}
        # The index's manifest, metrics.json and card now carry the test scores too.
        write_manifest(Path(request.out_dir), "index", spec.model_dump(mode="json"),
                       metrics, train_records=request.train)
    return metrics


def search_scenario() -> Scenario:
    from polymodal_nlp.search_index import load_search

    return Scenario(name="nlp.search", description="semantic search over documents "
                    "(embedded: the project's 215 documents and 120 queries)",
                    default_spec=SearchSpec().model_dump(mode="json"), spec_model=SearchSpec,
                    load_demo=search_demo, fit=fit_search, load_model=load_search,
                    quick_records=40, primary_input="query")


@click.group("search", help="Semantic search: index documents, query them, evaluate.")
def search_group() -> None:
    pass


@search_group.command("index")
@click.argument("docs", type=click.Path())
@out_dir_option(required=True, help="Index directory to write.")
@click.option("--id-field", default="id", show_default=True)
@click.option("--text-field", default="text", show_default=True)
@click.option("--encoder", default="minilm", show_default=True,
              help="A registered text encoder.")
@click.option("--source", default=None, help="Local checkpoint folder (hf-text).")
@click.option("--device", default=None)
@json_option
def index_command(docs: str, out_dir: str, id_field: str, text_field: str, encoder: str,
                  source: str | None, device: str | None, as_json: bool) -> None:
    """Embed the documents of DOCS (JSONL/CSV with an id and a text) into OUT."""
    from polymodal.plugin import emit_json, read_records

    built = build_index(read_records(docs), out_dir, id_field=id_field, text_field=text_field,
                        encoder={"encoder": encoder, "source": source,
                                 "options": DEFAULT_ENCODER["options"]
                                 if encoder == "minilm" else {}}, device=device)
    if as_json:
        emit_json({"out": out_dir, **built})
    else:
        click.echo(f"indexed {built['documents']} documents into {out_dir} "
                   f"({built['seconds']} s)")


@search_group.command("query")
@click.argument("index_dir", type=click.Path())
@click.argument("text")
@click.option("-k", "k", default=5, show_default=True)
@click.option("--device", default=None)
@json_option
def query_command(index_dir: str, text: str, k: int, device: str | None,
                  as_json: bool) -> None:
    """The K documents closest to TEXT."""
    from polymodal.plugin import emit_json
    from polymodal_nlp.search_index import SearchIndex

    hits = SearchIndex(index_dir, device).search([text], k)[0]
    if as_json:
        emit_json({"query": text, "results": hits})
    else:
        for hit in hits:
            click.echo(f"{hit['score']:.4f}  {hit['id']}  {hit['text'][:80]}")
