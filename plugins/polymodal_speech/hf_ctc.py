"""``speech.asr``'s ``hf`` backend over a local transformers CTC checkpoint (wav2vec2,
HuBERT, WavLM ... ``*ForCTC``): the model directory's ``checkpoint/`` folder, raw 16 kHz
samples normalised by its feature extractor in ``preprocess``, one forward pass, best-path
decoding by its tokenizer (repeats collapsed, padding dropped, word delimiters as spaces)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import ArtifactError, Record
from polymodal_speech.audio import SAMPLE_RATE
from polymodal_speech.transcriber import Transcriber

CTC_CHECKPOINT = "checkpoint"


def is_ctc_checkpoint(directory: Path) -> bool:
    """Whether a transformers checkpoint directory holds a ``*ForCTC`` model."""
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return any(str(a).endswith("ForCTC") for a in config.get("architectures") or [])


def load_ctc_checkpoint(directory: Path) -> tuple[Any, Any]:
    """(the ``AutoModelForCTC`` in float32, its processor) from a local directory; nothing
    is downloaded."""
    from transformers import AutoModelForCTC, AutoProcessor

    from polymodal.plugin import offline_transformers

    offline_transformers()
    try:
        model = AutoModelForCTC.from_pretrained(str(directory), local_files_only=True,
                                                dtype=torch.float32)
        processor = AutoProcessor.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: not a transformers CTC checkpoint ({exc})") from None
    return model.eval(), processor


class HFCTCTranscriber(Transcriber):
    backend = "hf"

    def __init__(self, model: Any, processor: Any, device: torch.device, *,
                 manifest: dict[str, Any] | None = None, precision: str = "fp32",
                 max_seconds: float = 600.0, window_seconds: float = 30.0) -> None:
        super().__init__(model, device, precision, manifest, max_seconds=max_seconds,
                         window_seconds=window_seconds)
        self.model, self.processor = model.to(device), processor

    def preprocess(self, windows: list[Any]) -> dict[str, torch.Tensor]:
        features = self.processor.feature_extractor(
            [w.samples for w in windows], sampling_rate=SAMPLE_RATE, padding=True,
            return_attention_mask=True, return_tensors="pt")
        return {"input_values": features.input_values,
                "attention_mask": features.attention_mask}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(input_values=batch["input_values"].to(self.model.dtype),
                          attention_mask=batch["attention_mask"]).logits

    def postprocess(self, outputs: torch.Tensor, batch: Any, records: list[Record]
                    ) -> list[Record]:
        frames = self.model._get_feat_extract_output_lengths(
            batch["attention_mask"].sum(-1)).cpu()
        best = outputs.float().argmax(-1).cpu()
        texts = self.processor.tokenizer.batch_decode(
            [row[:int(n)] for row, n in zip(best, frames, strict=True)])
        return [{"text": " ".join(text.lower().split())} for text in texts]
