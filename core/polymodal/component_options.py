"""The options of the core's components, typed, in a module that imports no torch: the
components validate their ``options`` with these, and ``polymodal components --json`` lists
them (name, type, default) without loading any model code."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from polymodal.options import Options

# The value type of the numeric modality: NaN and Infinity are not numbers a model takes.
FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]

# Encoders take their options as defaults checked by type (``encoders.base.options_of``).
NUMERIC = {"dim": 32, "log_skewed": False}
CATEGORICAL = {"dim": 32, "min_count": 1, "max_categories": None}


class ConcatOptions(Options):
    dropout: float = Field(default=0.1, ge=0, lt=1)


class GatedOptions(Options):
    hidden: int = Field(default=128, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)


class AttentionOptions(Options):
    hidden: int = Field(default=128, ge=1)
    heads: int = Field(default=4, ge=1)
    layers: int = Field(default=2, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    tokens: bool = Field(default=False, description="per-token states instead of pooled")
    max_tokens: int = Field(default=64, ge=1)
    condition: bool = Field(default=False, description="add the other inputs to each token")
    query: str | None = Field(default=None, description="decode this input's tokens")
    spatial: bool = Field(default=False, description="decoded tokens also get the grid "
                                                     "place their attention reads")
    readout: int = Field(default=0, ge=0, description="pool the summary and this many "
                                                      "decoded tokens, in order")


class FindOptions(Options):
    query: str | None = Field(default=None, description="the input whose words find objects")
    objects: str | None = Field(default=None, description="the input whose tokens are the "
                                                          "objects (default: the other one)")
    hidden: int = Field(default=128, ge=1)
    heads: int = Field(default=1, ge=1)
    readout: int = Field(default=16, ge=1, description="words read out in order")
    roles: int = Field(default=2, ge=0, description="learned pointers over the words whose "
                                                   "places are compared (0: none)")
    dropout: float = Field(default=0.0, ge=0, lt=1)


class LateOptions(Options):
    dropout: float = Field(default=0.1, ge=0, lt=1)


class TokenFusionOptions(Options):
    field: str | None = Field(default=None, description="the input whose tokens are fused "
                                                        "(default: the first)")
    dropout: float = Field(default=0.1, ge=0, lt=1)


class HeadOptions(Options):
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    hidden: int | None = Field(default=None, ge=1,
                               description="width of a hidden layer in the head (none: linear)")
    dropout: float = Field(default=0.1, ge=0, lt=1)


class ClassificationOptions(HeadOptions):
    positive: str | None = Field(
        default=None, description="the positive label of a two-label task, which AUROC, "
        "AUPRC, sensitivity, specificity and calibration are for (default: the second label "
        "in sorted order)")
    threshold: float = Field(default=0.5, gt=0, lt=1, description="the positive label's "
                             "probability above which sensitivity and specificity count it")


class MultilabelOptions(HeadOptions):
    separator: str = Field(default="|", min_length=1)
    threshold: float = Field(default=0.5, gt=0, lt=1)


class RegressionOptions(Options):
    dropout: float = Field(default=0.1, ge=0, lt=1)


class TokenClassificationOptions(Options):
    dropout: float = Field(default=0.1, ge=0, lt=1)
