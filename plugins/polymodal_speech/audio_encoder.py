"""The ``log-mel-cnn`` encoder of the ``audio`` modality, for any plugin's spec: log-mel
features made in the collate step (torchaudio's ``MelSpectrogram``; SpecAugment's frequency
and time masks on training batches only, through ``Processor.augmented``), then 1-D
convolutions over time that halve it ``blocks`` times: tokens (one per 20-80 ms) with their
mask, and a pooled vector (masked mean and max over time)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
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
from polymodal_speech.audio import SAMPLE_RATE, audio_seconds, read_audio
from polymodal_speech.options import LOG_MEL_CNN

HOP = 160  # 10 ms at 16 kHz
CACHED_FLOATS = 256 * 2**20  # features kept in memory: 1 GiB (about 4 hours of audio)


class LogMelProcessor(Processor):
    """Paths/bytes -> ``features`` [B, n_mels, T] (log-mel, each utterance standardised) and
    ``frames`` [B] (its real length; the rest is padding). A missing value is one silent
    frame."""

    variable_axes = {"features": [2]}  # frames: as many as the longest clip of the batch

    def __init__(self, n_mels: int, max_seconds: float, freq_mask: int = 0,
                 time_mask: int = 0, masks: int = 0) -> None:
        self.n_mels, self.max_seconds = n_mels, max_seconds
        self.freq_mask, self.time_mask, self.masks = freq_mask, time_mask, masks
        self._mel: Any = None
        self._cache: dict[tuple[str, int, int], torch.Tensor] = {}
        self._cached = 0  # floats held in the cache

    def fit(self, values: list[Any]) -> None:
        """Every training file's header read once: a bad file fails before training, by
        name."""
        for value in values:
            if value is not None:
                audio_seconds(value)

    def length(self, value: Any) -> int:
        return 1 if value is None else int(audio_seconds(value) * SAMPLE_RATE / HOP)

    def _log_mel(self, samples: np.ndarray) -> torch.Tensor:
        if self._mel is None:
            import torchaudio

            self._mel = torchaudio.transforms.MelSpectrogram(
                SAMPLE_RATE, n_fft=400, hop_length=HOP, n_mels=self.n_mels)
        mel = torch.log(self._mel(torch.from_numpy(samples)) + 1e-6)
        return (mel - mel.mean()) / (mel.std() + 1e-5)

    def _features(self, value: Any) -> torch.Tensor:
        if value is None:
            return torch.zeros(self.n_mels, 1)
        if not isinstance(value, str | os.PathLike):
            return self._log_mel(read_audio(value, max_seconds=self.max_seconds))
        # A file's features are kept (by path, size and modification time): training reads
        # every file once an epoch, and decoding it cost more than a training step's share.
        stat = os.stat(value)
        key = (os.fspath(value), stat.st_size, stat.st_mtime_ns)
        feature = self._cache.get(key)
        if feature is None:
            feature = self._log_mel(read_audio(value, max_seconds=self.max_seconds))
            if self._cached + feature.numel() <= CACHED_FLOATS:
                self._cache[key] = feature
                self._cached += feature.numel()
        return feature

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        return self._batch([self._features(v) for v in values])

    def from_samples(self, windows: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """The features of already decoded 16 kHz samples (a recogniser's windows)."""
        return self._batch([self._log_mel(w) for w in windows])

    def _batch(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        frames = torch.tensor([f.shape[1] for f in features])
        batch = torch.zeros(len(features), self.n_mels, int(frames.max()))
        for index, feature in enumerate(features):
            batch[index, :, :feature.shape[1]] = feature
        return {"features": batch, "frames": frames}

    def augmented(self, values: list[Any]) -> dict[str, torch.Tensor]:
        """SpecAugment (Park et al. 2019): ``masks`` frequency bands of up to ``freq_mask``
        mels and time spans of up to ``time_mask`` frames, zeroed, drawn per utterance."""
        import torchaudio

        batch = self(values)
        features = batch["features"].unsqueeze(1)  # [B, 1, mels, T]: iid masks per item
        for _ in range(self.masks):
            if self.freq_mask:
                features = torchaudio.transforms.FrequencyMasking(
                    self.freq_mask, iid_masks=True)(features)
            if self.time_mask:
                features = torchaudio.transforms.TimeMasking(
                    self.time_mask, iid_masks=True)(features)
        return {**batch, "features": features.squeeze(1)}

    def state(self) -> dict[str, Any]:
        return {"n_mels": self.n_mels, "max_seconds": self.max_seconds,
                "freq_mask": self.freq_mask, "time_mask": self.time_mask,
                "masks": self.masks}

    def load_state(self, state: dict[str, Any]) -> None:
        self.n_mels, self.max_seconds = state["n_mels"], state["max_seconds"]
        self.freq_mask, self.time_mask = state["freq_mask"], state["time_mask"]
        self.masks = state["masks"]
        self._mel = None
        self._cache, self._cached = {}, 0


class LogMelCNN(Encoder):
    """Log-mel frames through a 1-D CNN: a convolution at full rate, then ``blocks``
    stride-2 ones; tokens are the last layer's frames."""

    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        opts = options_of(spec, LOG_MEL_CNN)
        self.processor = prepare_processor(
            LogMelProcessor(opts["n_mels"], opts["max_seconds"], opts["freq_mask"],
                            opts["time_mask"], opts["masks"]), context)
        width = opts["width"]
        # A full-rate convolution, then ``blocks`` stride-2 ones; padded frames are zeroed
        # after each, so that a clip's output does not depend on the batch around it.
        self.layers = nn.ModuleList(
            [nn.Sequential(nn.Conv1d(opts["n_mels"] if i == 0 else width, width, 5,
                                     stride=1 if i == 0 else 2, padding=2),
                           nn.BatchNorm1d(width), nn.GELU())
             for i in range(opts["blocks"] + 1)])
        self.token_projection = nn.Linear(width, opts["output_dim"])
        self.project = nn.Sequential(nn.Linear(2 * width, opts["output_dim"]), nn.GELU())
        self.output_dim = opts["output_dim"]

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        states, frames = batch_field["features"], batch_field["frames"].to(
            batch_field["features"].device)
        for index, layer in enumerate(self.layers):
            states = layer(states)
            if index:
                frames = (frames - 1) // 2 + 1  # a stride-2 convolution's output length
            steps = torch.arange(states.shape[-1], device=states.device)
            mask = steps[None, :] < frames[:, None]  # [B, T']
            states = states * mask.unsqueeze(1).to(states.dtype)
        weights = mask.unsqueeze(1).to(states.dtype)
        mean = states.sum(-1) / weights.sum(-1).clamp(min=1.0)
        peak = states.masked_fill(~mask.unsqueeze(1), torch.finfo(states.dtype).min).amax(-1)
        pooled = self.project(torch.cat([mean, peak], dim=-1))
        return EncoderOutput(pooled=pooled, tokens=self.token_projection(states.transpose(1, 2)),
                             token_mask=mask)
