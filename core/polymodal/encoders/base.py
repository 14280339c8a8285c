"""The encoder contract.

An encoder is an ``nn.Module`` with ``output_dim`` and ``forward(batch_field) ->
EncoderOutput``. Its ``processor`` turns raw values into tensors; processors run in the
DataLoader's collate step (in worker processes), never inside ``forward``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch
from torch import nn

if TYPE_CHECKING:
    from polymodal.hub import ComponentHub
    from polymodal.spec import InputSpec


@dataclass
class EncoderOutput:
    """What every encoder returns: a pooled vector, and optionally per-token states."""

    pooled: torch.Tensor  # [B, D], D = the encoder's output_dim
    tokens: torch.Tensor | None = None  # [B, T, D], same D (words, image grid cells)
    token_mask: torch.Tensor | None = None  # [B, T], True where a token is real
    # [T, 2]: where each token lies on its grid (x, y from -1 to 1; image grid cells), the
    # same for every row of the batch; None for tokens without a place (words).
    token_positions: torch.Tensor | None = None


class Processor:
    """Raw values of one field -> a dict of batch tensors.

    ``fit`` learns what it needs from training values (statistics, vocabularies); ``state``
    and ``load_state`` round-trip that as JSON; ``save_files``/``load_files`` handle files
    such as a tokenizer. ``None`` is the marker for a missing value.
    """

    #: When set, every batch is padded (and cut) to this many tokens. Export sets it, for
    #: the length of its encoder's ``export_length``; a processor that honours it says so by
    #: its encoder declaring that length.
    pad_to: int | None = None
    #: Axes of this processor's tensors (by key) whose size varies from batch to batch
    #: beyond the batch axis: an exported graph keeps them dynamic. Export fixes every
    #: other axis of a file input's tensors (an image's channels and pixels).
    variable_axes: dict[str, list[int]] = {}  # noqa: RUF012 - read-only default

    def fit(self, values: list[Any]) -> None:  # noqa: B027 - optional override
        """Learn from training values; most processors need nothing."""

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def augmented(self, values: list[Any]) -> dict[str, torch.Tensor]:
        """``self(values)`` for a training batch, with the field's augmentation (SpecAugment
        masks on log-mel features, say): the training collator calls it, in the collate
        step; validation, evaluation and prediction call ``self``. Default: no
        augmentation."""
        return self(values)

    def length(self, value: Any) -> int:
        """A cheap size estimate of one value, used to bucket batches by length."""
        return 1

    def with_alignment(self, values: list[Any]
                       ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``self(values)`` and, per token of the encoder's token states, where it came
        from: ``offsets`` [B, T, 2] (character start/end; 0/0 for special tokens) and
        ``word_ids`` [B, T] (-1 for special and padding tokens). Token-level tasks need it;
        a processor whose tokens have no such origin refuses."""
        from polymodal.errors import SpecError

        raise SpecError(f"{type(self).__name__} gives no token offsets; a token-level task "
                        "needs a text encoder with a sub-word tokenizer (minilm, hf-text)")

    def windows(self, value: Any, overlap: float = 0.25) -> list[tuple[int, int]]:
        """Character ranges ``[start, end)`` of ``value`` that each fit the encoder's window,
        overlapping by about ``overlap`` of a window, for token-level tasks on long texts.
        A processor that reads its values whole gives one range."""
        return [(0, len(str(value or "")))]

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional override
        """Restore what ``state`` returned."""

    def save_files(self, directory: Path) -> None:  # noqa: B027 - optional override
        """Write files this processor needs at load time (e.g. a tokenizer)."""


@dataclass
class BuildContext:
    """What an encoder factory gets besides its input spec.

    ``values`` holds the training values of the field when a new model is built (to fit the
    processor); ``processor_state``/``processor_dir`` hold what an artifact saved when a
    trained model is loaded.
    """

    values: list[Any] | None = None
    processor_state: dict[str, Any] | None = None
    processor_dir: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    hub: ComponentHub | None = None


class Encoder(nn.Module):
    """Base class for encoders.

    ``pretrained`` encoders load fixed weights from a named source; only those may be
    ``frozen`` and shared between models through the component hub.
    """

    pretrained: ClassVar[bool] = False
    output_dim: int
    processor: Processor

    @property
    def export_length(self) -> int | None:
        """The token length an exported graph is traced at, for an encoder whose graph keeps
        it constant (``nn.MultiheadAttention`` traces it so); its processor then honours
        ``Processor.pad_to`` and export pads every batch to it. ``None``: lengths vary."""
        return None

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        raise NotImplementedError

    def export_config(self) -> dict[str, Any]:
        """Extra JSON facts about the built encoder, saved in the artifact."""
        return {}


P = TypeVar("P", bound="Processor")


def prepare_processor(processor: P, context: BuildContext) -> P:
    """Fit a fresh processor on training values, or restore a saved one."""
    if context.processor_state is not None:
        processor.load_state(context.processor_state)
    elif context.values is not None:
        processor.fit(context.values)
    return processor


def options_of(spec: InputSpec, defaults: dict[str, Any]) -> dict[str, Any]:
    """The encoder's options with defaults filled in; unknown options are refused."""
    from polymodal.errors import SpecError, closest

    for key in spec.options:
        if key not in defaults:
            near = closest(key, defaults)
            hint = (f"did you mean {', '.join(repr(c) for c in near)}?" if near
                    else f"valid: {', '.join(defaults)}" if defaults else "it takes none")
            raise SpecError(f"spec: inputs[{spec.name}].options: unknown option {key!r} of "
                            f"encoder {spec.encoder!r}; {hint}")
    for key, value in spec.options.items():
        problem = _option_problem(value, defaults[key])
        if problem:
            raise SpecError(f"spec: inputs[{spec.name}].options.{key}: {value!r} is not "
                            f"{problem} (default {defaults[key]!r})")
    return {**defaults, **spec.options}


def _option_problem(value: Any, default: Any) -> str | None:
    """What an option value fails to be, judged by its default's type (None: any value)."""
    if default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool):
            return "an integer"
        return None if value >= min(default, 1) else f"at least {min(default, 1)}"
    if isinstance(default, float):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return "a number"
        return None if value >= 0 else "zero or more"
    if isinstance(default, str):
        return None if isinstance(value, str) else "a string"
    return None
