"""``nlp.qa`` as a scenario on the core lifecycle: extractive question answering with a
span head over question + context windows of a registered text encoder, fitted by the core
Trainer; the core derives train/evaluate/predict, demo, load and serve."""

from __future__ import annotations

from typing import Any

from polymodal.plugin import DemoData, FitRequest, Scenario


def qa_demo() -> DemoData:
    from polymodal_nlp.qa_corpus import corpus
    from polymodal_nlp.qa_real import real_training_records

    templates, test = corpus()
    real = real_training_records()
    # The template questions first, so that --quick's first records are whole paragraphs
    # of them; the trainer shuffles.
    return DemoData(train=templates + real, test=test,
                    examples=[{"context": r["context"], "question": r["question"]}
                              for r in test[:2]],
                    source=f"the project's paragraphs and questions ({len(templates)}, "
                           f"polymodal_nlp.qa_corpus) and {len(real)} questions generated "
                           "from real news text (the Lee corpus, polymodal_nlp.qa_real)")


def fit_qa(request: FitRequest) -> dict[str, Any]:
    from polymodal_nlp.qa import train_qa

    return train_qa(request.spec, request.train, request.test, request.out_dir,
                    device=request.device, progress=request.progress, resume=request.resume,
                    real_text=not request.quick)


def qa_scenario() -> Scenario:
    from polymodal.plugin import TrainSpec
    from polymodal_nlp.qa import load_reader
    from polymodal_nlp.token_model import TokenSpec

    # Two epochs over the template and the real-text questions (3,451 questions, 3,744
    # windows; measured in docs/benchmarks.md).
    spec = TokenSpec(name="qa", scenario="nlp.qa",
                     train=TrainSpec(epochs=2, batch_size=16, lr=1.0e-4, warmup=0.1))
    return Scenario(name="nlp.qa", description="question + context -> answer span",
                    default_spec=spec.model_dump(mode="json"),
                    spec_model=TokenSpec, load_demo=qa_demo, fit=fit_qa,
                    load_model=load_reader,
                    quick_overrides=["train.epochs=2", "text.options.max_length=64"],
                    quick_records=24)
