"""The predictor of ``nlp.ner_spacy`` (spaCy's pretrained NER; the scenario is in
:mod:`polymodal_nlp.spacy_ner_scenario`), its model directory and its loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import BasePredictor, DataError, FitRequest, Record
from polymodal_nlp.ner_real import ONTONOTES_TO_CONLL, load_spacy_pipeline, spacy_entities
from polymodal_nlp.spacy_ner_scenario import SpacyNERSpec


class SpacyNERPredictor(BasePredictor):
    """spaCy's ``nlp.pipe`` over the texts (the NER component and the token vectors it
    listens to; the parser, tagger and lemmatizer are off)."""

    scenario = "nlp.ner_spacy"

    def __init__(self, spec: SpacyNERSpec, nlp: Any,
                 manifest: dict[str, Any] | None = None) -> None:
        super().__init__(None, torch.device("cpu"), "fp32", manifest)
        self.spec, self.nlp = spec, nlp

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "text", "modality": "text", "encoder": f"spacy:{self.spec.pipeline}"}]

    def describe_outputs(self) -> dict[str, Any]:
        labels = (sorted(set(ONTONOTES_TO_CONLL.values())) if self.spec.labels == "conll"
                  else list(self.nlp.get_pipe("ner").labels))
        return {"task": "token-classification", "target": "entities", "labels": labels,
                "entity": {"text": "the span's text", "label": "its type",
                           "start": "character offset", "end": "character offset"}}

    def validate(self, records: list[Record]) -> None:
        super().validate(records)
        for index, record in enumerate(records):
            text = record.get("text")
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"record {index}: 'text' must be a non-empty string")

    def preprocess(self, records: list[Record]) -> list[str]:
        return [record["text"] for record in records]

    def forward(self, texts: list[str]) -> list[Any]:
        return list(self.nlp.pipe(texts, batch_size=self.spec.batch_size))

    def postprocess(self, outputs: list[Any], batch: Any, records: list[Record]
                    ) -> list[Record]:
        return [{"entities": spacy_entities(doc, self.spec.labels)} for doc in outputs]

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        from polymodal.plugin import check_spans

        labelled = [r for r in records if isinstance(r.get("entities"), list)]
        if not labelled:
            raise DataError("no record has gold 'entities' ([{start, end, label}])")
        for index, record in enumerate(labelled):  # spans inside their text
            check_spans(record["entities"], record.get("text"), index)
        return labelled

    def score(self, records: list[Record], predictions: list[Record]) -> dict[str, Any]:
        from polymodal.plugin import score_spans

        return score_spans([r["entities"] for r in records],
                           [p["entities"] for p in predictions])


def _pipeline(spec: SpacyNERSpec) -> Any:
    from polymodal.plugin import SpecError

    try:
        return load_spacy_pipeline(spec.pipeline)
    except DataError as exc:  # a spec naming a pipeline that is not there
        raise SpecError(f"pipeline: {exc}") from None


def write_spacy_ner(request: FitRequest) -> dict[str, Any]:
    """Nothing to train: the model directory names the pipeline and its version, and the
    pipeline is scored on the test sentences."""
    from polymodal.plugin import building_directory, fit_events, write_manifest

    spec: SpacyNERSpec = request.spec
    if request.train:
        raise DataError("nlp.ner_spacy is pretrained and trains on nothing: leave --data "
                        "out, and score it with polymodal evaluate MODEL --data FILE; to "
                        "train a model on your data use nlp.ner")
    nlp = _pipeline(spec)
    model = SpacyNERPredictor(spec, nlp)
    metrics: dict[str, Any] = {"pipeline": spec.pipeline,
                               "pipeline_version": nlp.meta.get("version")}
    with fit_events(request.out_dir):
        if request.test:
            metrics["test"] = model.evaluate(model.evaluation_records(request.test))
        with building_directory(request.out_dir) as work:
            write_manifest(work, "spacy-ner", spec.model_dump(mode="json"), metrics,
                           train_records=[])
    return metrics


def load_spacy_ner(directory: str | Path, device: str | None = None,
                   precision: str = "fp32") -> SpacyNERPredictor:
    from polymodal.plugin import ArtifactError, parse_model_spec, read_manifest

    manifest = read_manifest(Path(directory))
    spec = parse_model_spec(SpacyNERSpec, manifest["spec"])
    try:
        nlp = load_spacy_pipeline(spec.pipeline)
    except DataError as exc:
        raise ArtifactError(f"{directory}: {exc}") from None
    return SpacyNERPredictor(spec, nlp, manifest)
