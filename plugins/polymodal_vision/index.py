"""An image index for text queries: ``polymodal vision retrieve index IMAGES... --model M
--out IDX`` and ``polymodal vision retrieve query IDX "text" -k 5``. Vectors in safetensors,
image paths in JSONL, the model directory named in ``index.json``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from polymodal.cli.commands import json_option


@click.command("index")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_dir", required=True, type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def index_command(images: tuple[str, ...], model_dir: str, out_dir: str) -> None:
    """Embed IMAGES (files, or folders of .png/.jpg) with the model's image tower."""
    from safetensors.torch import save_file

    from polymodal.artifacts import building_directory
    from polymodal.errors import DataError
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
    out = Path(out_dir)
    with building_directory(out) as work:
        save_file({"vectors": vectors.contiguous()}, str(work / "vectors.safetensors"))
        (work / "items.jsonl").write_text("".join(json.dumps({"image": p}) + "\n"
                                                  for p in paths))
        (work / "index.json").write_text(json.dumps(
            {"model": str(Path(model_dir).resolve()), "count": len(paths)}))
    click.echo(f"indexed {len(paths)} images into {out}")


@click.command("query")
@click.argument("index_dir", type=click.Path())
@click.argument("text")
@click.option("-k", "k", default=5, show_default=True)
@json_option
def query_command(index_dir: str, text: str, k: int, as_json: bool) -> None:
    """The K indexed images closest to TEXT (cosine similarity)."""
    from safetensors.torch import load_file

    from polymodal.cli.output import emit_json
    from polymodal.errors import ArtifactError
    from polymodal_vision.retrieve import load_retriever

    directory = Path(index_dir)
    try:
        meta = json.loads((directory / "index.json").read_text())
        vectors = load_file(str(directory / "vectors.safetensors"))["vectors"]
        items = [json.loads(line) for line in
                 (directory / "items.jsonl").read_text().splitlines()]
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{index_dir}: not a readable image index ({exc})") from None
    query = load_retriever(meta["model"]).embed_texts([text])[0]
    scores = vectors @ query
    top = scores.topk(min(k, len(items)))
    hits = [{"image": items[i]["image"], "score": round(float(s), 4)}
            for s, i in zip(top.values, top.indices.tolist(), strict=True)]
    if as_json:
        emit_json({"query": text, "results": hits})
    else:
        for hit in hits:
            click.echo(f"{hit['score']:.4f}  {hit['image']}")
