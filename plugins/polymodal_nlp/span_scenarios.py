"""``nlp.qa`` as a scenario on the core lifecycle: extractive question answering with a
span head over question + context windows of a registered text encoder, fitted by the core
Trainer; the core derives train/evaluate/predict, demo, load and serve."""

from __future__ import annotations

from typing import Any

from polymodal.plugin import DemoData, FitRequest, Scenario


def qa_demo() -> DemoData:
    from polymodal_nlp.qa_corpus import corpus

    train, test = corpus()
    return DemoData(train=train, test=test,
                    examples=[{"context": r["context"], "question": r["question"]}
                              for r in test[:2]],
                    source="the project's paragraphs and questions (polymodal_nlp.qa_corpus)")


def fit_qa(request: FitRequest) -> dict[str, Any]:
    from polymodal_nlp.qa import train_qa

    return train_qa(request.spec, request.train, request.test, request.out_dir,
                    device=request.device, progress=request.progress, resume=request.resume)


def qa_scenario() -> Scenario:
    from polymodal_nlp.qa import load_reader
    from polymodal_nlp.token_model import TokenSpec

    return Scenario(name="nlp.qa", description="question + context -> answer span",
                    default_spec=TokenSpec(name="qa", scenario="nlp.qa").model_dump(
                        mode="json"),
                    spec_model=TokenSpec, load_demo=qa_demo, fit=fit_qa,
                    load_model=load_reader,
                    quick_overrides=["train.epochs=2", "text.options.max_length=64"],
                    quick_records=24)
