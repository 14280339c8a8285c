"""``categorical``: an embedding per category seen in training, plus an unknown bucket."""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch import nn

from polymodal.component_options import CATEGORICAL
from polymodal.encoders.base import (
    BuildContext,
    Encoder,
    EncoderOutput,
    Processor,
    options_of,
    prepare_processor,
)
from polymodal.spec import InputSpec

UNKNOWN = 0


class CategoricalProcessor(Processor):
    """Maps each value to an index; index 0 is the unknown bucket (unseen, rare or missing)."""

    def __init__(self, min_count: int = 1, max_categories: int | None = None) -> None:
        self.min_count = min_count
        self.max_categories = max_categories
        self.vocab: dict[str, int] = {}

    def fit(self, values: list[Any]) -> None:
        counts = Counter(str(v) for v in values if v is not None)
        kept = [k for k, c in counts.most_common(self.max_categories) if c >= self.min_count]
        self.vocab = {k: i + 1 for i, k in enumerate(sorted(kept))}

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        ids = [UNKNOWN if v is None else self.vocab.get(str(v), UNKNOWN) for v in values]
        return {"ids": torch.tensor(ids, dtype=torch.long)}

    def state(self) -> dict[str, Any]:
        return {"vocab": self.vocab}

    def load_state(self, state: dict[str, Any]) -> None:
        self.vocab = dict(state["vocab"])


class CategoricalEncoder(Encoder):
    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        opts = options_of(spec, CATEGORICAL)
        processor = CategoricalProcessor(int(opts["min_count"]), opts["max_categories"])
        self.processor = prepare_processor(processor, context)
        self.output_dim = int(opts["dim"])
        self.embedding = nn.Embedding(len(self.processor.vocab) + 1, self.output_dim)

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        return EncoderOutput(pooled=self.embedding(batch_field["ids"]))
