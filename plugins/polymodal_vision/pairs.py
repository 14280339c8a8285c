"""``vision.retrieve`` and ``vision.caption`` as scenarios: their embedded data (synthetic
scene captions: 3,000 for training, 500 held out), demos, loaders and CLI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from polymodal.scenario import DemoSummary, Scenario

TRAIN_SCENES, TEST_SCENES = 3000, 500
QUICK_SCENES = 400


def caption_records(quick: bool = False) -> tuple[list[dict], list[dict]]:
    from polymodal_vision.datasets import scenes

    train = scenes("captions", TRAIN_SCENES, seed=0)
    test = scenes("captions", TEST_SCENES, seed=1)
    if quick:
        return train[:QUICK_SCENES], test[:QUICK_SCENES // 2]
    return train, test


def _spec(kind: str, overrides: list[str], quick: bool) -> Any:
    from polymodal.spec import apply_overrides
    from polymodal_vision.caption import CaptionSpec, parse_caption_spec
    from polymodal_vision.retrieve import RetrieveSpec, parse_retrieve_spec

    if kind == "retrieve":
        base, parse = RetrieveSpec().model_dump(mode="json"), parse_retrieve_spec
    else:
        base, parse = CaptionSpec().model_dump(mode="json"), parse_caption_spec
    return parse(apply_overrides(base, (["train.epochs=2"] if quick else []) + overrides))


def train_pairs(kind: str, out_dir: Path, *, data: str | None = None, test: str | None = None,
                overrides: list[str] | None = None, quick: bool = False,
                device: str | None = None, log: Any = None) -> dict[str, Any]:
    from polymodal.data.readers import read_records
    from polymodal_vision.caption import train_captioner
    from polymodal_vision.retrieve import train_retrieval

    spec = _spec(kind, list(overrides or []), quick)
    if data:
        train_rows, test_rows = read_records(data), read_records(test) if test else None
    else:
        train_rows, test_rows = caption_records(quick)
    if kind == "retrieve":
        return train_retrieval(spec, train_rows, test_rows, out_dir, device=device,
                               progress=log is not None)
    return train_captioner(spec, train_rows, test_rows, out_dir, device=device, log=log)


def run_demo(kind: str, out_dir: Path, quick: bool = False,
             device: str | None = None) -> DemoSummary:
    import polymodal

    start = time.perf_counter()
    metrics = train_pairs(kind, Path(out_dir), quick=quick, device=device)
    _, test = caption_records(quick)
    examples = [{"image": r["image"]} for r in test[:3]]
    if kind == "retrieve":
        examples = [{"text": r["caption"]} for r in test[:2]]
    predictions = polymodal.load(out_dir, device=device).predict(examples)
    if kind == "retrieve":
        predictions = [{"embedding": p["embedding"][:4] + ["..."]} for p in predictions]
    return DemoSummary.of(out_dir, time.perf_counter() - start, metrics.get("test", {}),
                          list(zip(examples, predictions, strict=True)))


def retrieve_scenario() -> Scenario:
    from polymodal_vision.retrieve import RetrieveSpec, load_retriever

    return Scenario(name="vision.retrieve", description="CLIP-style image-text retrieval "
                    "(synthetic scenes)", default_spec=RetrieveSpec().model_dump(mode="json"),
                    run_demo=lambda out_dir, quick=False, device=None:
                    run_demo("retrieve", Path(out_dir), quick, device),
                    load_model=load_retriever)


def caption_scenario() -> Scenario:
    from polymodal_vision.caption import CaptionSpec, load_captioner

    return Scenario(name="vision.caption", description="image -> caption (synthetic scenes)",
                    default_spec=CaptionSpec().model_dump(mode="json"),
                    run_demo=lambda out_dir, quick=False, device=None:
                    run_demo("caption", Path(out_dir), quick, device),
                    load_model=load_captioner)


def pair_group(kind: str) -> click.Group:
    """``polymodal vision retrieve|caption train|evaluate|predict`` (+ index/query)."""
    from polymodal.cli.commands import json_option, set_option
    from polymodal.cli.output import emit_json, emit_jsonl, print_metrics

    name = f"vision.{kind}"

    @click.group(kind, help=f"{name}: train, evaluate, predict"
                 + (", index, query." if kind == "retrieve" else "."))
    def group() -> None:
        pass

    @group.command("train")
    @click.option("--data", default=None, help="JSONL/CSV of {image, caption} (default: "
                  "synthetic scenes).")
    @click.option("--test", default=None, help="Held-out pairs.")
    @click.option("--out", "out_dir", default=f"runs/vision-{kind}", show_default=True,
                  type=click.Path(file_okay=False))
    @set_option
    @click.option("--quick", is_flag=True)
    @click.option("--device", default=None)
    @json_option
    def train(data: str | None, test: str | None, out_dir: str, overrides: tuple[str, ...],
              quick: bool, device: str | None, as_json: bool) -> None:
        """Train on (image, caption) pairs; held-out metrics at the end."""
        metrics = train_pairs(kind, Path(out_dir), data=data, test=test,
                              overrides=list(overrides), quick=quick, device=device,
                              log=None if as_json else click.echo)
        held_out = {k: v for k, v in metrics.get("test", {}).items()
                    if not isinstance(v, list)}
        if as_json:
            emit_json({"out": out_dir, **metrics})
        else:
            print_metrics(f"{name}: {out_dir}", held_out)

    @group.command("evaluate")
    @click.argument("model_dir", type=click.Path())
    @click.option("--data", default=None, help="Pairs (default: the held-out scenes).")
    @json_option
    def evaluate(model_dir: str, data: str | None, as_json: bool) -> None:
        """Held-out metrics of a trained model."""
        import polymodal
        from polymodal.data.readers import read_records

        rows = read_records(data) if data else caption_records()[1]
        metrics = polymodal.load(model_dir).evaluate(rows)
        if as_json:
            emit_json(metrics)
        else:
            print_metrics(f"{name}: {model_dir}", {k: v for k, v in metrics.items()
                                                   if not isinstance(v, list)})

    @group.command("predict")
    @click.argument("model_dir", type=click.Path())
    @click.argument("values", nargs=-1)
    @json_option
    def predict(model_dir: str, values: tuple[str, ...], as_json: bool) -> None:
        """Predict for image files (captions) or texts/images (embeddings)."""
        import polymodal

        key = "image" if kind == "caption" else None
        records = [{key or ("image" if Path(v).is_file() else "text"): v} for v in values]
        emit_jsonl(polymodal.load(model_dir).predict(records))

    if kind == "retrieve":
        from polymodal_vision.index import index_command, query_command

        group.add_command(index_command)
        group.add_command(query_command)
    return group
