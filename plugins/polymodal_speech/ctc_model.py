"""The ``ctc`` backend of ``speech.asr``: a character CTC recogniser trained from scratch with
the core Trainer. Log-mel features (the ``log-mel-cnn`` encoder's processor, SpecAugment on
training batches) -> convolutions (20 ms a step: room for fast speech's characters) ->
characters; greedy decoding, or torchaudio's beam search with a lexicon (the training
transcripts' words) and optionally an n-gram LM (KenLM ARPA)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from polymodal.plugin import ModuleSteps, Record
from polymodal_speech.audio_encoder import LogMelProcessor

BLANK, SPACE = "-", "|"
TOKENS = [BLANK, SPACE, *"abcdefghijklmnopqrstuvwxyz'"]
INDEX = {token: i for i, token in enumerate(TOKENS)}
FRAME_SECONDS = 0.02  # one output frame: two 10 ms feature hops


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


def _frames_mask(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, 1, T]: 1 for a clip's frames, 0 for the padding after them."""
    return (torch.arange(x.shape[2], device=x.device)[None] < lengths[:, None]).unsqueeze(1)


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of each frame of [B, C, T] (no batch statistics: a
    clip's output does not depend on the clips padded beside it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class SeparableBlock(nn.Module):
    """Residual depthwise-separable convolution over time (QuartzNet's building block)."""

    def __init__(self, width: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(width, width, kernel, padding=kernel // 2, groups=width)
        self.pointwise = nn.Conv1d(width, width, 1)
        self.norm = ChannelNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = nn.functional.gelu(self.norm(self.pointwise(self.depthwise(x))))
        return (x + self.dropout(y)) * mask


class CTCNet(nn.Module):
    """Log-mel [B, mels, T] -> a stride-2 convolution (20 ms a step) -> residual separable
    convolutions (about 1.4 s of context with the defaults) -> character log-probabilities.
    Convolutions rather than a recurrent layer: a BiGRU of the same size trained about 6x
    slower on 2 CPU cores (docs/speech.md)."""

    def __init__(self, n_mels: int, width: int, blocks: int, kernel: int,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.front = nn.Conv1d(n_mels, width, 5, stride=2, padding=2)
        self.front_norm = ChannelNorm(width)
        self.blocks = nn.ModuleList([SeparableBlock(width, kernel, dropout)
                                     for _ in range(blocks)])
        self.out = nn.Conv1d(width, len(TOKENS), 1)

    @staticmethod
    def output_lengths(frames: torch.Tensor) -> torch.Tensor:
        return (frames - 1) // 2 + 1

    def forward(self, features: torch.Tensor, frames: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probabilities [B, T', tokens], output lengths [B])."""
        states = nn.functional.gelu(self.front_norm(self.front(features)))
        lengths = self.output_lengths(frames).clamp(max=states.shape[2])
        mask = _frames_mask(states, lengths)
        states = states * mask
        for block in self.blocks:
            states = block(states, mask)
        return self.out(states).transpose(1, 2).log_softmax(-1), lengths


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
