"""An image index for text queries: ``polymodal vision retrieve index IMAGES... --model M
--out IDX`` and ``polymodal vision retrieve query IDX "text" -k 5``, on the core vector index
(image paths as its items, the model directory named in its metadata)."""

from __future__ import annotations

from pathlib import Path

import click

from polymodal.plugin import json_option


@click.command("index")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_dir", required=True, type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def index_command(images: tuple[str, ...], model_dir: str, out_dir: str) -> None:
    """Embed IMAGES (files, or folders of .png/.jpg) with the model's image tower."""
    from polymodal.plugin import DataError, write_index
    from polymodal_vision.retrieve import load_retriever

    paths: list[str] = []
    for item in images:
        path = Path(item)
        if path.is_dir():
            paths += sorted(str(p.resolve()) for p in path.rglob("*")
                            if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"})
        elif path.is_file():
            paths.append(str(path.resolve()))
        else:
            raise DataError(f"{item}: no such file or folder")
    if not paths:
        raise DataError("no images to index")
    retriever = load_retriever(model_dir)
    vectors = retriever.embed_images(paths)
    write_index(out_dir, vectors, [{"image": p} for p in paths],
                {"model": str(Path(model_dir).resolve())})
    click.echo(f"indexed {len(paths)} images into {out_dir}")


@click.command("query")
@click.argument("index_dir", type=click.Path())
@click.argument("text")
@click.option("-k", "k", default=5, show_default=True)
@json_option
def query_command(index_dir: str, text: str, k: int, as_json: bool) -> None:
    """The K indexed images closest to TEXT (cosine similarity)."""
    from polymodal.plugin import emit_json, read_index, top_k
    from polymodal_vision.retrieve import load_retriever

    meta, vectors, items = read_index(index_dir, "image index")
    query = load_retriever(meta["model"]).embed_texts([text])
    scores, indices = top_k(vectors, query, k)
    hits = [{"image": items[i]["image"], "score": round(float(s), 4)}
            for s, i in zip(scores[0], indices[0].tolist(), strict=True)]
    if as_json:
        emit_json({"query": text, "results": hits})
    else:
        for hit in hits:
            click.echo(f"{hit['score']:.4f}  {hit['image']}")
