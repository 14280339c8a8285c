"""The options of the NLP plugin's encoders with their defaults, in a module that imports no
torch: the encoders check their ``options`` against them, and ``polymodal components --json``
lists them without loading model code."""

from __future__ import annotations

from typing import Any

# minilm and hf-text
TEXT_ENCODER: dict[str, Any] = {"max_length": 128, "pooling": "mean", "truncation": "head",
                                "gradient_checkpointing": False, "attention_dropout": None,
                                "hidden_dropout": None}
WORD_TRANSFORMER: dict[str, Any] = {"dim": 128, "layers": 1, "heads": 4, "max_length": 64,
                                    "max_vocabulary": 20000, "dropout": 0.1}
