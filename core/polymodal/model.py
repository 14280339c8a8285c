"""Model assembly: encoders per input, a fusion, a task head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.data.collate import field_value
from polymodal.encoders.base import BuildContext, Encoder, EncoderOutput
from polymodal.errors import ArtifactError, SpecError
from polymodal.fusions import FusedDims, FusedOutput, Fusion
from polymodal.hub import ComponentHub, get_hub
from polymodal.options import build_with_options
from polymodal.records import Record
from polymodal.registry import get_registry
from polymodal.spec import InputSpec, Spec
from polymodal.tasks.base import Task


class MultimodalModel(nn.Module):
    """encoders -> fusion -> task head (per-field heads with averaged logits for late fusion).

    Frozen encoders come from the component hub and may be shared with other models: they
    stay in eval mode and are left out of this model's saved weights.
    """

    def __init__(self, spec: Spec, encoders: dict[str, Encoder], fusion: Fusion,
                 task: Task) -> None:
        super().__init__()
        self.spec = spec
        self.task = task
        self.encoders = nn.ModuleDict(encoders)
        self.fusion = fusion
        self.frozen_fields = {i.name for i in spec.inputs if i.frozen}
        if task.reads == "tokens" and (fusion.late or fusion.token_dim is None):
            raise SpecError(
                f"spec: task {spec.task.name!r} reads token states, and fusion "
                f"{spec.fusion.name!r} gives none; use fusion 'tokens' (or 'attention' with "
                "query and tokens: true)")
        if fusion.late:
            self.heads = nn.ModuleDict(
                {f: task.build_head(FusedDims(pooled=d)) for f, d in fusion.output_dims.items()}
            )
        else:
            self.head = task.build_head(fusion.dims)

    @property
    def processors(self) -> dict[str, Any]:
        return {name: enc.processor for name, enc in self.encoders.items()}

    def forward(self, inputs: dict[str, dict[str, torch.Tensor]],
                present: dict[str, torch.Tensor],
                repeat: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits for a batch. ``repeat`` (from a Collator with ``shared``): for a field
        whose batch holds each distinct value once, which of them each record has."""
        encoded: dict[str, EncoderOutput] = {}
        for name, encoder in self.encoders.items():
            if name in self.frozen_fields:
                with torch.no_grad():
                    encoded[name] = encoder(inputs[name])
            else:
                encoded[name] = encoder(inputs[name])
            if repeat and name in repeat:
                encoded[name] = _repeat(encoded[name], repeat[name])
        if self.training and self.spec.train.modality_dropout and len(present) > 1:
            present = drop_modalities(present, self.spec.train.modality_dropout)
        fused: FusedOutput = self.fusion(encoded, present)
        if fused.per_field is None:
            return self.head(fused.tokens if self.task.reads == "tokens" else fused.pooled)
        total: torch.Tensor | None = None
        count: torch.Tensor | None = None
        for name, embedding in fused.per_field.items():
            weight = present[name].to(embedding.dtype).unsqueeze(-1)
            logits = self.heads[name](embedding) * weight
            total = logits if total is None else total + logits
            count = weight if count is None else count + weight
        assert total is not None and count is not None
        return total / count.clamp(min=1.0)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights to save: everything but the frozen, hub-shared encoders."""
        skip = tuple(f"encoders.{name}." for name in self.frozen_fields)
        return {k: v for k, v in self.state_dict().items() if not k.startswith(skip)}


def drop_modalities(present: dict[str, torch.Tensor], rate: float
                    ) -> dict[str, torch.Tensor]:
    """Each present input of a record marked absent with probability ``rate``; a record
    that would lose all of its inputs keeps one of them, drawn at random."""
    names = list(present)
    flags = torch.stack([present[n] for n in names], dim=1)  # [B, M]
    kept = flags & (torch.rand(flags.shape, device=flags.device) >= rate)
    lost = flags.any(dim=1) & ~kept.any(dim=1)
    if lost.any():  # one of the record's present inputs, by random scores
        scores = torch.rand(flags.shape, device=flags.device).masked_fill(~flags, -1.0)
        pick = torch.zeros_like(flags).scatter_(1, scores.argmax(dim=1, keepdim=True), True)
        kept = torch.where(lost.unsqueeze(1), pick, kept)
    return {name: kept[:, index] for index, name in enumerate(names)}


def _repeat(output: EncoderOutput, index: torch.Tensor) -> EncoderOutput:
    """One row per record from one row per distinct value."""
    def pick(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.index_select(0, index)

    return EncoderOutput(pooled=output.pooled.index_select(0, index),
                         tokens=pick(output.tokens), token_mask=pick(output.token_mask),
                         token_positions=output.token_positions)


def build_encoder(inp: InputSpec, context: BuildContext) -> Encoder:
    registry = get_registry()
    factory = registry.get("encoder", inp.encoder).resolve()
    if not inp.frozen:
        return factory(inp, context)
    if not getattr(factory, "pretrained", False):
        raise SpecError(
            f"spec: inputs[{inp.name}]: encoder {inp.encoder!r} learns from the data and "
            "cannot be frozen"
        )
    hub: ComponentHub = context.hub or get_hub()
    key = hub.key(inp.encoder, inp.source, context.device, torch.float32, True, inp.options)
    return hub.get(key, lambda: factory(inp, context).to(context.device))  # type: ignore[return-value]


def build_task(spec: Spec) -> Task:
    return get_registry().build("task", spec.task.name, spec.task)


def build_model(spec: Spec, *, task: Task, train_records: list[Record] | None = None,
                processor_states: dict[str, Any] | None = None,
                artifact_dir: Path | None = None,
                device: torch.device | None = None) -> MultimodalModel:
    """Assemble a model, fitting processors on ``train_records`` or restoring saved ones."""
    device = device or torch.device("cpu")
    registry = get_registry()
    encoders: dict[str, Encoder] = {}
    for inp in spec.inputs:
        context = BuildContext(device=device, hub=get_hub())
        if processor_states is not None:
            context.processor_state = processor_states.get(inp.name, {})
            if artifact_dir is not None:
                context.processor_dir = artifact_dir / "processors" / inp.name
        elif train_records is not None:
            context.values = [field_value(r, inp) for r in train_records]
        try:
            encoders[inp.name] = build_encoder(inp, context)
        except (TypeError, ValueError, KeyError, RuntimeError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            if processor_states is not None:
                raise ArtifactError(f"{artifact_dir}: input {inp.name!r} cannot be restored "
                                    f"from its processor files ({reason})") from None
            raise SpecError(f"spec: inputs[{inp.name}]: encoder {inp.encoder!r} cannot be "
                            f"built with options {inp.options} ({reason})") from None
    input_dims = {name: enc.output_dim for name, enc in encoders.items()}
    factory = registry.get("fusion", spec.fusion.name).resolve()
    fusion = build_with_options(factory, spec.fusion.options, "fusion.options",
                                f"fusion {spec.fusion.name!r}", input_dims, skip=1)
    model = MultimodalModel(spec, encoders, fusion, task)
    return model.to(device)


