"""``word-transformer``: a small text encoder trained from scratch. Words (lower-cased,
split on anything not a letter or digit) from a vocabulary fitted on the training texts,
learned embeddings and positions, a few transformer layers; mean-pooled vector and the word
states as tokens. For short, domain-specific texts (questions, commands, labels) where a
pretrained model is slow and its general knowledge is not needed."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import torch
from torch import nn

from polymodal.plugin import (
    BuildContext,
    Encoder,
    EncoderOutput,
    InputSpec,
    Processor,
    options_of,
    prepare_processor,
)
from polymodal_nlp.options import WORD_TRANSFORMER

WORD = re.compile(r"[a-z0-9]+")
PAD, UNK = 0, 1


def split_words(text: Any) -> list[str]:
    return WORD.findall(str(text).lower()) if text is not None else []


class WordProcessor(Processor):
    def __init__(self, max_length: int, max_vocabulary: int) -> None:
        self.max_length = max_length
        self.max_vocabulary = max_vocabulary
        self.words: list[str] = []
        self.index: dict[str, int] = {}

    def fit(self, values: list[Any]) -> None:
        counts = Counter(w for v in values for w in split_words(v))
        self.words = [w for w, _ in counts.most_common(self.max_vocabulary)]
        self.index = {w: i + 2 for i, w in enumerate(self.words)}

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        rows = [[self.index.get(w, UNK) for w in split_words(v)][: self.max_length] or [UNK]
                for v in values]
        width = self.pad_to or max(len(r) for r in rows)
        rows = [r[:width] for r in rows]
        ids = torch.full((len(rows), width), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return {"ids": ids, "mask": ids != PAD}

    def length(self, value: Any) -> int:
        return min(len(split_words(value)), self.max_length) or 1

    def state(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "max_vocabulary": self.max_vocabulary,
                "words": self.words}

    def load_state(self, state: dict[str, Any]) -> None:
        self.max_length, self.max_vocabulary = state["max_length"], state["max_vocabulary"]
        self.words = state["words"]
        self.index = {w: i + 2 for i, w in enumerate(self.words)}

    @property
    def vocabulary_size(self) -> int:
        return len(self.words) + 2


class WordTransformerEncoder(Encoder):
    processor: WordProcessor

    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        opts = options_of(spec, WORD_TRANSFORMER)
        self.processor = prepare_processor(
            WordProcessor(opts["max_length"], opts["max_vocabulary"]), context)
        dim = opts["dim"]
        # Sized by the fitted vocabulary; a loaded model gets the same size from its state.
        self.embed = nn.Embedding(self.processor.vocabulary_size, dim, padding_idx=PAD)
        self.positions = nn.Parameter(torch.randn(opts["max_length"], dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, opts["heads"], 2 * dim, opts["dropout"],
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, opts["layers"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.output_dim = dim

    @property
    def export_length(self) -> int:
        return self.processor.max_length  # attention's traced shapes keep the length

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        ids, mask = batch_field["ids"], batch_field["mask"]
        states = self.embed(ids) + self.positions[: ids.shape[1]]
        states = self.norm(self.encoder(states, src_key_padding_mask=~mask))
        weights = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return EncoderOutput(pooled=pooled, tokens=states, token_mask=mask)
