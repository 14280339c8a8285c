"""``visit-sequence``: a patient's visits up to the index time through a time-aware GRU.

A value of the ``ehr-visits`` modality is a list of visits, each an object of named numbers
with ``days_before`` (days from the visit to the index time, >= 0), e.g.
``[{"days_before": 365, "bili": 1.2, "albumin": 3.6}, {"days_before": 0, "bili": 2.0}]``.
The processor orders them oldest first, keeps the most recent ``max_visits``, and reads
each visit's numbers with the core numeric processor (names fitted on the training
visits, standardised, a missing value flagged); the time of each visit before the index
and the gap since the visit before it (in years) are two more inputs. The network is a GRU
cell stepped over the visits, a padded step leaving the state as it was, so the pooled
vector (the state after the most recent visit) does not depend on the padding; the state
after each visit is a token, for attention fusions.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from polymodal.plugin import (
    BuildContext,
    DataError,
    Encoder,
    EncoderOutput,
    InputSpec,
    NumericProcessor,
    Processor,
    options_of,
    prepare_processor,
)
from polymodal_medical.ehr import DAYS_PER_YEAR
from polymodal_medical.options import VISIT_SEQUENCE
from polymodal_medical.types import VISIT_TIME as TIME_KEY


def _visits_of(value: Any) -> list[dict[str, Any]]:
    """One value's visits, oldest first; each must say its ``days_before``."""
    if not isinstance(value, list | tuple):
        raise DataError(f"expected a list of visits, got {type(value).__name__}")
    visits = []
    for i, visit in enumerate(value):
        if not isinstance(visit, dict):
            raise DataError(f"visit {i}: expected an object, got {type(visit).__name__}")
        time = visit.get(TIME_KEY)
        if isinstance(time, bool) or not isinstance(time, int | float) \
                or not math.isfinite(time) or time < 0:
            raise DataError(f"visit {i}: {TIME_KEY!r} must be a number of days >= 0")
        visits.append(visit)
    return sorted(visits, key=lambda v: -float(v[TIME_KEY]))


class VisitSequenceProcessor(Processor):
    """Lists of visits -> ``values``/``missing`` [B, T, W], ``time`` [B, T, 2] and
    ``mask`` [B, T] (oldest first from step 0, padding after the latest visit)."""

    def __init__(self, max_visits: int, log_skewed: bool) -> None:
        self.max_visits = max_visits
        self.numbers = NumericProcessor(0, log_skewed)

    def _kept(self, value: Any) -> list[dict[str, Any]]:
        return [] if value is None else _visits_of(value)[-self.max_visits:]

    def fit(self, values: list[Any]) -> None:
        visits = [{k: v for k, v in visit.items() if k != TIME_KEY}
                  for value in values for visit in self._kept(value)]
        if not visits:
            raise DataError("no training record has a visit")
        self.numbers.fit(visits)

    def length(self, value: Any) -> int:
        return len(value) if isinstance(value, list) else 1

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        per_value = [self._kept(v) for v in values]
        steps = self.pad_to or max([len(v) for v in per_value] + [1])
        width = self.numbers.width
        batch = len(values)
        out = {"values": torch.zeros(batch, steps, width),
               "missing": torch.ones(batch, steps, width),
               "time": torch.zeros(batch, steps, 2),
               "mask": torch.zeros(batch, steps, dtype=torch.bool)}
        for i, visits in enumerate(per_value):
            visits = visits[-steps:]
            if not visits:
                continue
            numbers = self.numbers([{k: v for k, v in visit.items() if k != TIME_KEY}
                                    for visit in visits])
            end = len(visits)
            out["values"][i, :end] = numbers["values"]
            out["missing"][i, :end] = numbers["missing"]
            before = [float(v[TIME_KEY]) / DAYS_PER_YEAR for v in visits]
            gaps = [0.0] + [a - b for a, b in zip(before, before[1:], strict=False)]
            out["time"][i, :end] = torch.tensor(list(zip(before, gaps, strict=True)))
            out["mask"][i, :end] = True
        return out

    def state(self) -> dict[str, Any]:
        return {"max_visits": self.max_visits, "numbers": self.numbers.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.max_visits = int(state["max_visits"])
        self.numbers.load_state(state["numbers"])


class VisitSequenceEncoder(Encoder):
    """Each visit (numbers, missing flags, time before the index, gap) -> a GRU step."""

    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        options = options_of(spec, VISIT_SEQUENCE)
        self.max_visits = int(options["max_visits"])
        if self.max_visits < 1:
            raise DataError("visit-sequence: max_visits must be at least 1")
        self.processor = prepare_processor(
            VisitSequenceProcessor(self.max_visits, bool(options["log_skewed"])), context)
        width = self.processor.numbers.width
        self.output_dim = int(options["dim"])
        self.embed = nn.Sequential(nn.Linear(2 * width + 2, self.output_dim), nn.GELU())
        self.cell = nn.GRUCell(self.output_dim, self.output_dim)

    @property
    def export_length(self) -> int | None:
        return self.max_visits

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        steps = self.embed(torch.cat([batch_field["values"], batch_field["missing"],
                                      batch_field["time"]], dim=-1))
        mask = batch_field["mask"]
        state = steps.new_zeros(steps.shape[0], self.output_dim)
        tokens = []
        for t in range(steps.shape[1]):
            real = mask[:, t].unsqueeze(-1)
            state = torch.where(real, self.cell(steps[:, t], state), state)
            tokens.append(state)
        return EncoderOutput(pooled=state, tokens=torch.stack(tokens, dim=1),
                             token_mask=mask)
