"""The step protocol: what a model says about training, so that one Trainer can do the rest.

As Lightning splits ``LightningModule`` from ``Trainer``: a ``Trainable`` gives its module,
how to collate its items, one training step (a loss), one validation step (updating its
metrics), its metrics, its parameter groups and the metric to monitor. The Trainer owns the
loop, optimizer and schedule, validation, early stopping, best checkpoint, checkpoint and
resume, signals, torch.distributed, gradient accumulation, autocast, progress, metrics.jsonl
and the training events. ``SpecModelSteps`` (encoders -> fusion -> task) is one implementer;
scenarios with other networks (a dual encoder, a captioner) bring their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from polymodal.records import Record
from polymodal.spec import Spec, TrainSpec


@runtime_checkable
class Trainable(Protocol):
    """A model the Trainer can fit.

    ``module`` holds every parameter; ``training_step`` and ``validation_step`` get the
    module to call (``module`` itself, or it wrapped in DistributedDataParallel: only its
    ``forward`` is synchronised, so a step must compute through ``module(...)``)."""

    module: nn.Module
    # The validation metric that picks the best epoch and stops early, and the metrics
    # where lower is better.
    monitor: str
    minimized: tuple[str, ...]
    # Whether each rank validates its own slice of the validation items (metrics synced
    # across ranks, as torchmetrics does) or every rank all of them.
    shard_validation: bool

    def collator(self, *, train: bool) -> Callable[[list[Any]], Any]:
        """Items -> a batch. It runs in DataLoader workers (all preprocessing happens
        there), so it must pickle without the module."""

    def lengths(self, items: list[Any]) -> list[int] | None:
        """A size estimate per item to bucket batches by length (None: no bucketing)."""

    def groups(self, items: list[Any]) -> list[Any] | None:
        """A key per item for batches of items sharing it (``train.group_by``), or None."""

    def training_step(self, module: nn.Module, batch: Any) -> torch.Tensor:
        """The loss of one batch."""

    def batch_size(self, batch: Any) -> int:
        """Items in a batch (weights the epoch's mean training loss)."""

    def validation_step(self, module: nn.Module, batch: Any) -> None:
        """Accumulate one validation batch into the metrics."""

    def compute_metrics(self) -> dict[str, Any]:
        """The metrics accumulated since the last call (and reset them)."""

    def param_groups(self, train: TrainSpec) -> list[dict[str, Any]]:
        """AdamW parameter groups."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint and the best epoch keep."""

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore ``state_dict``."""

    def identity(self) -> dict[str, Any]:
        """What a checkpoint's tensors depend on; ``--resume`` refuses another."""


class SpecModelSteps:
    """The steps of a ``MultimodalModel``: batches from the spec's Collator, the task's loss
    and torchmetrics, per-input learning rates."""

    shard_validation = True

    def __init__(self, spec: Spec, model: Any, device: torch.device) -> None:
        from polymodal.data.collate import model_collator

        self.spec, self.module, self.device = spec, model, device
        task = model.task
        self.monitor = spec.train.monitor or task.monitor
        self.minimized = tuple(task.minimized)
        self._collate = {True: model_collator(model, with_target=True,
                                              shared=spec.train.group_by, augment=True),
                         False: model_collator(model, with_target=True)}
        self._metrics: Any = None
        self._loss = [0.0, 0.0]

    def collator(self, *, train: bool) -> Callable[[list[Record]], Any]:
        return self._collate[train]

    def lengths(self, items: list[Record]) -> list[int] | None:
        from polymodal.data.loader import record_lengths

        if self.spec.train.group_by or not self.spec.train.bucket_by_length:
            return None
        return record_lengths(items, self.module)

    def groups(self, items: list[Record]) -> list[Any] | None:
        from polymodal.data.collate import field_value, shared_key

        shared = self.spec.train.group_by
        if shared is None:
            return None
        inp = next(i for i in self.spec.inputs if i.name == shared)
        return [shared_key(field_value(r, inp)) for r in items]

    def _forward(self, module: nn.Module, batch: Any) -> torch.Tensor:
        return module(batch["inputs"], batch["present"], batch.get("repeat"))

    def training_step(self, module: nn.Module, batch: Any) -> torch.Tensor:
        return self.module.task.loss(self._forward(module, batch), batch)

    def batch_size(self, batch: Any) -> int:
        from polymodal.tasks.base import batch_size

        return batch_size(batch)

    def validation_step(self, module: nn.Module, batch: Any) -> None:
        task = self.module.task
        if self._metrics is None:
            self._metrics = task.metrics().to(self.device)
        outputs = self._forward(module, batch)
        size = self.batch_size(batch)
        self._loss[0] += float(task.loss(outputs, batch)) * size
        self._loss[1] += size
        task.update_metrics(self._metrics, outputs, batch)

    def compute_metrics(self) -> dict[str, Any]:
        from polymodal.distributed import sum_across

        result = self.module.task.finalize_metrics(self._metrics.compute())
        total_loss, total = sum_across(self._loss, self.device)
        result["loss"] = total_loss / max(total, 1.0)
        result["n"] = int(total)
        self._metrics, self._loss = None, [0.0, 0.0]
        return result

    def param_groups(self, train: TrainSpec) -> list[dict[str, Any]]:
        from polymodal.training.schedule import decay_groups

        lr_of = {f"encoders.{i.name}.": i.lr for i in self.spec.inputs if i.lr is not None}
        return decay_groups(self.module.named_parameters(), train.lr, train.weight_decay,
                            lr_of)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.trainable_state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state, strict=False)

    def identity(self) -> dict[str, Any]:
        data = self.spec.to_dict()
        return {key: data[key] for key in ("inputs", "fusion", "task")}


class ModuleSteps:
    """The steps of a plain ``nn.Module`` whose batches are tensors of fixed-size items: a
    scenario gives how to collate items and the loss of a batch (computed through
    ``module(...)``); validation is the mean loss unless ``evaluate`` is given (items ->
    metrics, run on every rank). Enough for a dual encoder, a captioner, a causal LM.
    ``lengths`` (items -> a size per item) buckets training batches by length, as the spec
    path does for text: padding to the batch's longest window costs as much as real tokens."""

    shard_validation = False

    def __init__(self, module: nn.Module, *, collate: Callable[[list[Any]], Any],
                 loss: Callable[[nn.Module, Any], torch.Tensor], identity: dict[str, Any],
                 batch_size: Callable[[Any], int],
                 evaluate: Callable[[list[Any]], dict[str, Any]] | None = None,
                 monitor: str = "loss", minimized: tuple[str, ...] = ("loss",),
                 lengths: Callable[[list[Any]], list[int]] | None = None) -> None:
        self.module = module
        self._lengths = lengths
        self._collate, self._loss_fn, self._identity = collate, loss, identity
        self._batch_size, self._evaluate = batch_size, evaluate
        self.monitor, self.minimized = monitor, minimized
        self._loss = [0.0, 0.0]
        self._items: list[Any] = []

    def collator(self, *, train: bool) -> Callable[[list[Any]], Any]:
        if train or self._evaluate is None:
            return self._collate
        collate = self._collate
        return lambda items: (collate(items), items)

    def lengths(self, items: list[Any]) -> list[int] | None:
        return None if self._lengths is None else self._lengths(items)

    def groups(self, items: list[Any]) -> list[Any] | None:
        return None

    def training_step(self, module: nn.Module, batch: Any) -> torch.Tensor:
        return self._loss_fn(module, batch)

    def batch_size(self, batch: Any) -> int:
        return self._batch_size(batch)

    def validation_step(self, module: nn.Module, batch: Any) -> None:
        if self._evaluate is not None:
            batch, items = batch
            self._items.extend(items)
        size = self._batch_size(batch)
        self._loss[0] += float(self._loss_fn(module, batch)) * size
        self._loss[1] += size

    def compute_metrics(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if self._evaluate is not None:
            was_training = self.module.training
            self.module.eval()
            metrics.update(self._evaluate(self._items))
            self.module.train(was_training)
        metrics["loss"] = self._loss[0] / max(self._loss[1], 1.0)
        self._loss, self._items = [0.0, 0.0], []
        return metrics

    def param_groups(self, train: TrainSpec) -> list[dict[str, Any]]:
        from polymodal.training.schedule import decay_groups

        return decay_groups(self.module.named_parameters(), train.lr, train.weight_decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)

    def identity(self) -> dict[str, Any]:
        return self._identity
