"""Model assembly: encoders per input, a fusion, a task head; and the batch collator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.encoders.base import BuildContext, Encoder, EncoderOutput
from polymodal.errors import ArtifactError, SpecError
from polymodal.fusions import Fusion
from polymodal.hub import ComponentHub, get_hub
from polymodal.registry import get_registry
from polymodal.spec import InputSpec, Spec
from polymodal.tasks.base import Task

Record = dict[str, Any]


def field_value(record: Record, inp: InputSpec) -> Any:
    """The raw value of an input in a record: its own column, the one column it names
    (``columns: [review]`` reads ``review``), or a list over several ``columns``."""
    if inp.columns and len(inp.columns) == 1:
        return record.get(inp.columns[0])
    if inp.columns:
        values = [record.get(c) for c in inp.columns]
        return None if all(v is None for v in values) else values
    return record.get(inp.name)


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
        if fusion.late:
            self.heads = nn.ModuleDict(
                {f: task.build_head(d) for f, d in fusion.output_dims.items()}
            )
        else:
            self.head = task.build_head(fusion.output_dim)

    @property
    def processors(self) -> dict[str, Any]:
        return {name: enc.processor for name, enc in self.encoders.items()}

    def train(self, mode: bool = True) -> MultimodalModel:
        super().train(mode)
        for name in self.frozen_fields:
            self.encoders[name].eval()
        return self

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
        fused = self.fusion(encoded, present)
        if fused.per_field is None:
            return self.head(fused.embedding)
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


def _repeat(output: EncoderOutput, index: torch.Tensor) -> EncoderOutput:
    """One row per record from one row per distinct value."""
    def pick(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.index_select(0, index)

    return EncoderOutput(pooled=output.pooled.index_select(0, index),
                         tokens=pick(output.tokens), token_mask=pick(output.token_mask))


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
    try:
        fusion = registry.build("fusion", spec.fusion.name, input_dims, **spec.fusion.options)
    except TypeError as exc:
        raise SpecError(f"spec: fusion {spec.fusion.name!r}: bad options ({exc})") from None
    model = MultimodalModel(spec, encoders, fusion, task)
    return model.to(device)


class Collator:
    """Records -> batch. Runs in DataLoader workers: all preprocessing happens here."""

    def __init__(self, spec: Spec, processors: dict[str, Any], task: Task | None, *,
                 shared: str | None = None) -> None:
        self.inputs = list(spec.inputs)
        self.processors = processors
        self.task = task
        self.target = spec.task.target
        self.shared = shared

    def __call__(self, records: list[Record]) -> dict[str, Any]:
        inputs: dict[str, dict[str, torch.Tensor]] = {}
        present: dict[str, torch.Tensor] = {}
        repeat: dict[str, torch.Tensor] = {}
        for inp in self.inputs:
            values = [field_value(r, inp) for r in records]
            present[inp.name] = torch.tensor([v is not None for v in values], dtype=torch.bool)
            if inp.name == self.shared:
                values, repeat[inp.name] = _distinct(values)
            inputs[inp.name] = self.processors[inp.name](values)
        batch: dict[str, Any] = {"inputs": inputs, "present": present}
        if repeat:
            batch["repeat"] = repeat
        if self.task is not None:
            batch["target"] = self.task.encode_targets([r.get(self.target) for r in records])
        return batch


def shared_key(value: Any) -> Any:
    """What tells records that share an input apart (``train.group_by``): the value, or its
    repr where the value cannot be a dict key (a list of columns)."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _distinct(values: list[Any]) -> tuple[list[Any], torch.Tensor]:
    """The distinct values (first-seen order) and, per value, its index among them."""
    index: dict[Any, int] = {}
    distinct: list[Any] = []
    positions = []
    for value in values:
        key = shared_key(value)
        if key not in index:
            index[key] = len(distinct)
            distinct.append(value)
        positions.append(index[key])
    return distinct, torch.tensor(positions, dtype=torch.long)


def ordered_loader(model: MultimodalModel, records: list[Record], batch_size: int, *,
                   with_target: bool) -> Any:
    """Batches of ``records`` in the given order (evaluation and prediction)."""
    from polymodal.data.loader import make_loader

    task = model.task if with_target else None
    return make_loader(records, Collator(model.spec, model.processors, task),
                       batch_size=batch_size, shuffle=False, seed=0)


def chunked_batches(model: MultimodalModel, records: list[Record],
                    chunks: list[list[int]]) -> Iterator[dict[str, Any]]:
    """Collated batches of ``records`` exactly as ``chunks`` (lists of indices) say. In the
    calling thread: a served request should not pay for setting up a DataLoader."""
    collate = Collator(model.spec, model.processors, None)
    for chunk in chunks:
        yield collate([records[i] for i in chunk])


def move_batch(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    def move(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return obj.to(device, non_blocking=True)
        if isinstance(obj, dict):
            return {k: move(v) for k, v in obj.items()}
        return obj

    return move(batch)
