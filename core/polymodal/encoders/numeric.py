"""``numeric``: one or more float columns, or an object of named numbers (features whose
names are fitted on the training values: an EHR record), standardised with training
statistics; a missing value (or an absent name) is 0 and a flag. With ``log_skewed``, a
column whose training values are all non-negative and right-skewed (sample skewness above
1: lab values, counts, durations) is standardised as log(1 + x)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from polymodal.component_options import NUMERIC
from polymodal.encoders.base import (
    BuildContext,
    Encoder,
    EncoderOutput,
    Processor,
    options_of,
    prepare_processor,
)
from polymodal.errors import DataError, FieldError
from polymodal.spec import InputSpec

# Sample skewness above which a non-negative column is log-transformed (``log_skewed``).
SKEWNESS_FOR_LOG = 1.0
# The largest magnitude a float32 tensor holds; beyond it a value becomes infinite.
FLOAT32_MAX = 3.4028234663852886e38


def _to_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"not a number: {value!r}") from None
    if math.isnan(number):
        return None
    if not abs(number) <= FLOAT32_MAX:
        raise DataError(f"{value!r} is not a finite number (or beyond float32's range)")
    return number


def check_numbers(records: list[dict[str, Any]], fields: list[str], where: str) -> None:
    """Refuse a record whose numeric field holds text, infinity or an overflowing value,
    naming the record (``where`` + index) and field: one bad value would otherwise train a
    model whose statistics are infinite, or predict NaN."""
    for i, record in enumerate(records):
        for name in fields:
            value = record.get(name) if isinstance(record, dict) else None
            if isinstance(value, list | tuple):
                values = list(value)
            elif isinstance(value, dict):
                values = list(value.values())
            else:
                values = [value]
            for part in values:
                try:
                    _to_float(part)
                except DataError as exc:
                    raise FieldError(f"{where} {i}, field {name!r}: {exc}", i, name) from None


def _skewed(column: list[float]) -> bool:
    """All values non-negative and the sample skewness above ``SKEWNESS_FOR_LOG``."""
    if len(column) < 3 or min(column) < 0:
        return False
    mean = sum(column) / len(column)
    var = sum((x - mean) ** 2 for x in column) / len(column)
    if var == 0:
        return False
    third = sum((x - mean) ** 3 for x in column) / len(column)
    return third / var ** 1.5 > SKEWNESS_FOR_LOG


class NumericProcessor(Processor):
    """Values are a float, a list of floats (one per column) or an object of named floats
    (``names``: the sorted names seen in training; others are ignored); missing -> 0 and a
    flag. ``log_skewed``: the columns fitted as skewed are read as log(1 + max(x, 0))."""

    def __init__(self, width: int, log_skewed: bool = False) -> None:
        self.width = width
        self.log_skewed = log_skewed
        self.names: list[str] | None = None
        self.mean = [0.0] * width
        self.std = [1.0] * width
        self.log = [False] * width

    def _rows(self, values: list[Any]) -> list[list[float | None]]:
        rows = []
        for value in values:
            if value is None:
                parts: list[Any] = [None] * self.width
            elif isinstance(value, dict):
                if self.names is None:
                    raise DataError("an object of named numbers where this input was "
                                    "fitted on plain numbers")
                parts = [value.get(name) for name in self.names]
            elif isinstance(value, list | tuple):
                parts = list(value)
            else:
                parts = [value]
            rows.append([_to_float(p) for p in parts])
        return rows

    def fit(self, values: list[Any]) -> None:
        if any(isinstance(v, dict) for v in values):
            self.names = sorted({str(k) for v in values if isinstance(v, dict) for k in v})
            self.width = len(self.names)
            self.mean, self.std = [0.0] * self.width, [1.0] * self.width
        self.log = [False] * self.width
        rows = self._rows(values)
        for j in range(self.width):
            column = [v for r in rows if (v := r[j]) is not None]
            if column and self.log_skewed and _skewed(column):
                self.log[j] = True
                column = [math.log1p(x) for x in column]
            if column:
                mean = sum(column) / len(column)
                var = sum((x - mean) ** 2 for x in column) / max(len(column) - 1, 1)
                self.mean[j], self.std[j] = mean, math.sqrt(var) or 1.0

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        rows = self._rows(values)
        x = torch.zeros(len(rows), self.width)
        missing = torch.zeros(len(rows), self.width)
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if v is None:
                    missing[i, j] = 1.0
                else:  # clamped: a value far outside the training range stays finite
                    if self.log[j]:
                        v = math.log1p(max(v, 0.0))
                    x[i, j] = max(-1e6, min(1e6, (v - self.mean[j]) / self.std[j]))
        return {"values": x, "missing": missing}

    def state(self) -> dict[str, Any]:
        return {"width": self.width, "mean": self.mean, "std": self.std, "names": self.names,
                "log": self.log}

    def load_state(self, state: dict[str, Any]) -> None:
        self.width, self.mean, self.std = state["width"], state["mean"], state["std"]
        self.names = state.get("names")
        self.log = list(state.get("log") or [False] * self.width)


class NumericEncoder(Encoder):
    """A small MLP over standardised values and their missing-value flags."""

    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        opts = options_of(spec, NUMERIC)
        self.processor = prepare_processor(
            NumericProcessor(len(spec.fields), bool(opts["log_skewed"])), context)
        width = self.processor.width
        self.output_dim = int(opts["dim"])
        self.mlp = nn.Sequential(nn.Linear(2 * width, self.output_dim), nn.GELU(),
                                 nn.Linear(self.output_dim, self.output_dim))

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        features = torch.cat([batch_field["values"], batch_field["missing"]], dim=-1)
        return EncoderOutput(pooled=self.mlp(features))
