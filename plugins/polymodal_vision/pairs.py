"""``vision.retrieve`` and ``vision.caption`` as scenarios on the core lifecycle: their own
specs and networks (a dual encoder, a captioner), fitted by the core Trainer; the core
derives train/evaluate/predict, demo, load and serve. Embedded data: synthetic scene
captions, 3,000 for training and 500 held out. ``retrieve`` also has ``index`` and
``query`` verbs (an image index for text queries)."""

from __future__ import annotations

from typing import Any

import click

from polymodal.plugin import DemoData, FitRequest, Record, Scenario

TRAIN_SCENES, TEST_SCENES = 3000, 500
QUICK_SCENES = 400


def caption_records(quick: bool = False) -> tuple[list[Record], list[Record]]:
    from polymodal_vision.datasets import scenes

    train = scenes("captions", TRAIN_SCENES, seed=0)
    test = scenes("captions", TEST_SCENES, seed=1)
    if quick:
        return train[:QUICK_SCENES], test[:QUICK_SCENES // 2]
    return train, test


def retrieve_demo() -> DemoData:
    train, test = caption_records()
    return DemoData(train=train, test=test,
                    examples=[{"text": r["caption"]} for r in test[:2]],
                    source="synthetic scenes (polymodal_vision.scenes)")


def caption_demo() -> DemoData:
    train, test = caption_records()
    return DemoData(train=train, test=test, examples=[{"image": r["image"]} for r in test[:3]],
                    source="synthetic scenes (polymodal_vision.scenes)")


def fit_retrieval(request: FitRequest) -> dict[str, Any]:
    from polymodal_vision.retrieve import train_retrieval

    return train_retrieval(request.spec, request.train, request.test, request.out_dir,
                           device=request.device, progress=request.progress,
                           resume=request.resume, dist=request.dist)


def fit_captioner(request: FitRequest) -> dict[str, Any]:
    from polymodal_vision.caption import train_captioner

    return train_captioner(request.spec, request.train, request.test, request.out_dir,
                           device=request.device, progress=request.progress,
                           resume=request.resume)


def retrieve_scenario() -> Scenario:
    from polymodal_vision.retrieve import RetrieveSpec, load_retriever

    return Scenario(name="vision.retrieve", description="CLIP-style image-text retrieval "
                    "(synthetic scenes)", default_spec=RetrieveSpec().model_dump(mode="json"),
                    spec_model=RetrieveSpec, load_demo=retrieve_demo, fit=fit_retrieval,
                    load_model=load_retriever, quick_overrides=["train.epochs=2"],
                    quick_records=QUICK_SCENES, primary_input="text", distributed=True)


def caption_scenario() -> Scenario:
    from polymodal_vision.caption import CaptionSpec, load_captioner

    return Scenario(name="vision.caption", description="image -> caption (synthetic scenes)",
                    default_spec=CaptionSpec().model_dump(mode="json"),
                    spec_model=CaptionSpec, load_demo=caption_demo, fit=fit_captioner,
                    load_model=load_captioner, quick_overrides=["train.epochs=2"],
                    quick_records=QUICK_SCENES, primary_input="image")


def retrieve_extra_verbs() -> click.Group:
    """``polymodal vision retrieve index|query`` (the core adds train/evaluate/predict)."""
    from polymodal_vision.index import index_command, query_command

    group = click.Group("retrieve", help="vision.retrieve: CLIP-style image-text retrieval; "
                        "train, evaluate, predict, and an image index (index, query).")
    group.add_command(index_command)
    group.add_command(query_command)
    return group
