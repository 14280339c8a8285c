"""The ``ctc`` backend of ``speech.asr``: a character CTC recogniser trained from scratch with
the core Trainer. Log-mel features (the ``log-mel-cnn`` encoder's processor, SpecAugment on
training batches) -> two stride-2 convolutions (40 ms a step) -> a bidirectional GRU ->
characters; greedy decoding, or torchaudio's beam search with a lexicon (the training
transcripts' words) and optionally an n-gram LM (KenLM ARPA)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from polymodal.plugin import ModuleSteps, Record
from polymodal_speech.audio_encoder import LogMelProcessor

BLANK, SPACE = "-", "|"
TOKENS = [BLANK, SPACE, *"abcdefghijklmnopqrstuvwxyz'"]
INDEX = {token: i for i, token in enumerate(TOKENS)}


def encode_text(text: str) -> list[int]:
    """Lower-cased characters as token ids, words joined by the separator; other characters
    dropped."""
    words = ["".join(c for c in word if c in INDEX) for word in text.lower().split()]
    return [INDEX[c] for c in SPACE.join(w for w in words if w)]


def greedy_text(ids: list[int]) -> str:
    """Best path: repeats collapsed, blanks dropped, separators as spaces."""
    out, previous = [], -1
    for index in ids:
        if index != previous and index != 0:
            out.append(TOKENS[index])
        previous = index
    return " ".join("".join(out).replace(SPACE, " ").split())


class CTCNet(nn.Module):
    def __init__(self, n_mels: int, width: int, hidden: int, layers: int,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.front = nn.Sequential(
            nn.Conv1d(n_mels, width, 5, stride=2, padding=2), nn.BatchNorm1d(width), nn.GELU(),
            nn.Conv1d(width, width, 5, stride=2, padding=2), nn.BatchNorm1d(width), nn.GELU())
        self.rnn = nn.GRU(width, hidden, num_layers=layers, batch_first=True,
                          bidirectional=True, dropout=dropout if layers > 1 else 0.0)
        self.out = nn.Linear(2 * hidden, len(TOKENS))

    @staticmethod
    def output_lengths(frames: torch.Tensor) -> torch.Tensor:
        for _ in range(2):
            frames = (frames - 1) // 2 + 1
        return frames

    def forward(self, features: torch.Tensor, frames: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probabilities [B, T', tokens], output lengths [B])."""
        states = self.front(features).transpose(1, 2)
        lengths = self.output_lengths(frames).clamp(max=states.shape[1])
        packed = nn.utils.rnn.pack_padded_sequence(states, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        hidden, _ = self.rnn(packed)
        hidden, _ = nn.utils.rnn.pad_packed_sequence(hidden, batch_first=True,
                                                     total_length=states.shape[1])
        return self.out(hidden).log_softmax(-1), lengths


class CTCCollator:
    """Records -> features, frames and the transcripts' token ids (concatenated, with
    lengths, as ``ctc_loss`` takes them); ``augment``: SpecAugment (training batches)."""

    def __init__(self, processor: LogMelProcessor, augment: bool) -> None:
        self.processor, self.augment = processor, augment

    def __call__(self, records: list[Record]) -> dict[str, torch.Tensor]:
        values = [r["audio"] for r in records]
        batch = self.processor.augmented(values) if self.augment else self.processor(values)
        targets = [encode_text(r["text"]) for r in records]
        return {**batch, "targets": torch.tensor([t for row in targets for t in row]),
                "target_lengths": torch.tensor([len(row) for row in targets])}


def ctc_loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    log_probs, lengths = module(batch["features"], batch["frames"])
    return nn.functional.ctc_loss(log_probs.transpose(0, 1).float(), batch["targets"],
                                  lengths, batch["target_lengths"], blank=0,
                                  zero_infinity=True)


class CTCSteps(ModuleSteps):
    """The core's module steps with two collators: SpecAugment on training batches only."""

    def __init__(self, module: nn.Module, processor: LogMelProcessor,
                 identity: dict[str, Any]) -> None:
        super().__init__(module, collate=CTCCollator(processor, augment=False), loss=ctc_loss,
                         identity=identity, batch_size=lambda b: len(b["frames"]))
        self._train_collate = CTCCollator(processor, augment=True)

    def collator(self, *, train: bool) -> Any:
        return self._train_collate if train else super().collator(train=False)


def window_features(processor: LogMelProcessor, windows: list[np.ndarray]
                    ) -> dict[str, torch.Tensor]:
    """The processor's features of already decoded 16 kHz windows."""
    return processor.from_samples(windows)
