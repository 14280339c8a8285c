"""Records -> batches: the collator (all preprocessing, in DataLoader workers), loaders in
record order for evaluation and prediction, and moving a batch to a device."""

from __future__ import annotations

from typing import Any

import torch

from polymodal.records import Record
from polymodal.spec import InputSpec, Spec


def field_value(record: Record, inp: InputSpec) -> Any:
    """The raw value of an input in a record: its own column, the one column it names
    (``columns: [review]`` reads ``review``), or a list over several ``columns``."""
    if inp.columns and len(inp.columns) == 1:
        return record.get(inp.columns[0])
    if inp.columns:
        values = [record.get(c) for c in inp.columns]
        return None if all(v is None for v in values) else values
    return record.get(inp.name)


class Collator:
    """Records -> batch. Runs in DataLoader workers: all preprocessing happens here.

    A batch is ``{"inputs": {field: tensors}, "present": {field: bool [B]}}``, plus
    ``"repeat"`` (``shared``: one row per distinct value of that field), ``"target"`` (the
    task's own structure, from ``Task.collate_targets``) and, for a task that
    ``needs_alignment``, ``"alignment"`` (the token field's character offsets and word ids)
    and ``"raw"`` (its raw values), for one that ``needs_records``, ``"records"``."""

    def __init__(self, spec: Spec, processors: dict[str, Any], task: Any, *,
                 shared: str | None = None, targets: bool = True,
                 token_field: str | None = None, augment: bool = False) -> None:
        self.inputs = list(spec.inputs)
        # Training batches: each processor's ``augmented`` (SpecAugment, crops ...)
        self.augment = augment
        self.processors = processors
        self.task = task
        self.targets = targets and task is not None
        self.target = spec.task.target
        self.shared = shared
        self.align = token_field if task is not None and task.needs_alignment else None

    def __call__(self, records: list[Record]) -> dict[str, Any]:
        inputs: dict[str, dict[str, torch.Tensor]] = {}
        present: dict[str, torch.Tensor] = {}
        repeat: dict[str, torch.Tensor] = {}
        batch: dict[str, Any] = {"inputs": inputs, "present": present}
        for inp in self.inputs:
            values = [field_value(r, inp) for r in records]
            present[inp.name] = torch.tensor([v is not None for v in values], dtype=torch.bool)
            if inp.name == self.shared:
                values, repeat[inp.name] = _distinct(values)
            processor = self.processors[inp.name]
            if inp.name == self.align:
                inputs[inp.name], batch["alignment"] = processor.with_alignment(values)
                batch["raw"] = values
            elif self.augment:
                inputs[inp.name] = processor.augmented(values)
            else:
                inputs[inp.name] = processor(values)
        if repeat:
            batch["repeat"] = repeat
        if self.task is not None and getattr(self.task, "needs_records", False):
            batch["records"] = records
        if self.targets:
            batch["target"] = self.task.collate_targets(
                [r.get(self.target) for r in records], batch)
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


def model_collator(model: Any, *, with_target: bool, shared: str | None = None,
                   augment: bool = False) -> Collator:
    """The collator of a MultimodalModel (its spec, processors, task and token field);
    ``augment``: the training collator (processors' ``augmented``)."""
    return Collator(model.spec, model.processors, model.task, targets=with_target,
                    shared=shared, token_field=model.fusion.token_field, augment=augment)


def ordered_loader(model: Any, records: list[Record], batch_size: int, *,
                   with_target: bool) -> Any:
    """Batches of ``records`` in the given order (evaluation and prediction)."""
    from polymodal.data.loader import make_loader

    return make_loader(records, model_collator(model, with_target=with_target),
                       batch_size=batch_size, shuffle=False, seed=0)


def move_batch(batch: Any, device: torch.device) -> Any:
    """The batch with every tensor on ``device``, through dicts, lists and tuples (a task's
    targets may be a list of per-image dicts)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_batch(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [move_batch(v, device) for v in batch]
    if isinstance(batch, tuple):
        return tuple(move_batch(v, device) for v in batch)
    return batch
