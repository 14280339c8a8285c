"""The one Trainer: it fits any ``Trainable`` (see ``polymodal.training.steps``).

AdamW over the trainable's parameter groups, warmup + cosine/linear schedule, gradient
clipping and accumulation, validation every epoch, early stopping on the monitored metric,
best-epoch weights, resumable checkpoints (model, optimizer, scheduler, scaler, RNG and
sampler position: ``<work>/checkpoints/last/`` in safetensors + JSON, never unpickled),
SIGINT/SIGTERM, torch.distributed (DDP; gloo on CPU, nccl on CUDA), autocast + GradScaler,
length-bucketed batches, rich progress bars, ``metrics.jsonl`` and the training events
(train_start, step_end, epoch_end, checkpoint_saved, train_end).
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.checkpoint import (
    LAST,
    CheckpointError,
    checkpoints_dir,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from polymodal.data.loader import make_loader
from polymodal.device import autocast, autocast_dtype
from polymodal.distributed import SINGLE, DistContext, any_rank, barrier, sum_across
from polymodal.errors import NonFiniteLoss, SpecError, TrainingInterrupted, unknown
from polymodal.reporting import write_history
from polymodal.spec import TrainSpec
from polymodal.training.ema import WeightAverage
from polymodal.training.progress import EpochProgress
from polymodal.training.schedule import lr_lambda, seed_everything
from polymodal.training.signals import StopSignals
from polymodal.training.steps import Trainable

EventHook = Callable[[str, dict[str, Any]], None]


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if mode == "max" else value < best


@dataclass
class TrainResult:
    module: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    monitor: str = "loss"
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def model(self) -> nn.Module:
        return self.module


class Trainer:
    def __init__(self, train: TrainSpec, steps: Trainable, *, work_dir: Path,
                 device: torch.device, on_event: EventHook | None = None,
                 progress: bool = True, dist: DistContext = SINGLE) -> None:
        self.cfg = train
        self.steps = steps
        self.dist = dist
        self.work_dir = Path(work_dir)
        self.device = device
        self.on_event = on_event or (lambda event, state: None)
        self.progress = progress
        self.amp_dtype = autocast_dtype(device, train.precision)
        self.scaler = torch.amp.GradScaler(
            device.type, enabled=self.amp_dtype == torch.float16 and device.type == "cuda"
        )
        self.monitor = train.monitor or steps.monitor
        self.monitor_mode = "min" if self.monitor in steps.minimized else "max"

    @property
    def checkpoint_dir(self) -> Path:
        return checkpoints_dir(self.work_dir) / LAST

    def _loader(self, items: list[Any], *, train: bool) -> Any:
        cfg, ctx, steps = self.cfg, self.dist, self.steps
        if not train and ctx.enabled and steps.shard_validation:
            items = items[ctx.rank::ctx.world_size]  # each rank its slice; metrics synced
        groups = steps.groups(items) if train else None
        lengths = None if groups is not None else steps.lengths(items)
        size = cfg.batch_size if train else (cfg.eval_batch_size or cfg.batch_size * 2)
        return make_loader(items, steps.collator(train=train), batch_size=size,
                           shuffle=train, seed=cfg.seed, lengths=lengths, groups=groups,
                           num_workers=cfg.num_workers, pin_memory=self.device.type == "cuda",
                           rank=ctx.rank if train else 0,
                           world_size=ctx.world_size if train else 1)

    def _emit(self, event: str, **state: Any) -> None:
        if self.dist.is_main:
            self.on_event(event, {"out_dir": str(self.work_dir), **state})

    def _wrapped(self) -> nn.Module:
        """The module to call in training: DDP around it when distributed."""
        module = self.steps.module
        if not self.dist.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = None
        if self.device.type == "cuda":
            # Batch statistics over the global batch, as in one process (in place: the
            # parameters stay the ones the optimizer holds). gloo has no SyncBatchNorm.
            nn.SyncBatchNorm.convert_sync_batchnorm(module)
            ids = [self.device.index]
        # Some networks hold parameters a step does not use (an image encoder's token
        # projection when the task reads the pooled vector): DDP must not wait for them.
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    def fit(self, train_items: list[Any], val_items: list[Any],
            resume: bool = False) -> TrainResult:
        cfg, steps = self.cfg, self.steps
        seed_everything(cfg.seed)
        module = steps.module
        forward_module = self._wrapped()
        train_loader = self._loader(train_items, train=True)
        val_loader = self._loader(val_items, train=False) if val_items else None
        optimizer = torch.optim.AdamW(steps.param_groups(cfg))
        batches = len(train_loader.batch_sampler)
        if cfg.limit_batches is not None:
            batches = min(batches, cfg.limit_batches)
        steps_per_epoch = math.ceil(batches / cfg.grad_accum)
        total = steps_per_epoch * cfg.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(cfg.schedule, int(cfg.warmup * total), total)
        )
        state: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "best": None,
                                 "best_epoch": 0, "bad_epochs": 0, "history": [],
                                 "loss_sum": 0.0, "seen": 0}
        best_state: dict[str, torch.Tensor] | None = None
        self.average = WeightAverage(steps, cfg.ema) if cfg.ema else None
        found = find_checkpoint(self.work_dir) if resume else None
        if found is not None:
            state, best_state = self._load_checkpoint(found, optimizer, scheduler)
        started = time.perf_counter()
        self._emit("train_start", epoch=state["epoch"], step=state["step"])
        stopped_early = False
        with StopSignals() as stop_signal:
            for epoch in range(state["epoch"], cfg.epochs):
                first = state["batch"]
                train_loader.batch_sampler.set_epoch(epoch, start=first)
                module.train()
                t0 = time.perf_counter()
                seen_at_start = state["seen"]
                with EpochProgress(self.progress and self.dist.is_main,
                                   f"epoch {epoch + 1}/{cfg.epochs}", batches,
                                   completed=first) as advance:
                    for index, batch in zip(range(first, batches), train_loader,
                                            strict=False):
                        boundary = (index + 1) % cfg.grad_accum == 0 or index + 1 == batches
                        self._train_batch(forward_module, batch, state, sync=boundary)
                        if boundary:
                            self._optimizer_step(optimizer, scheduler)
                            if self.average is not None:
                                self.average.update()
                            state["step"] += 1
                        state["batch"] = index + 1
                        advance(state["loss_sum"] / max(state["seen"], 1))
                        if boundary:
                            self._emit("step_end", epoch=epoch, step=state["step"],
                                       batch=index + 1)
                            if self._should_stop(stop_signal, state["step"], index + 1 == batches):
                                self._save_checkpoint(optimizer, scheduler, state, best_state)
                                raise TrainingInterrupted(
                                    f"training stopped by {stop_signal.requested or 'a peer'}"
                                    f" at epoch {epoch + 1}, batch {index + 1}; checkpoint "
                                    f"saved in {self.checkpoint_dir}; continue with --resume")
                seen = state["seen"] - seen_at_start
                row = self._epoch_row(epoch, state, scheduler,
                                      seen / max(time.perf_counter() - t0, 1e-9))
                state.update(batch=0, loss_sum=0.0, seen=0)
                with (self.average.applied() if self.average is not None
                      else contextlib.nullcontext()):
                    value, mode = self._validate(forward_module, val_loader, row)
                    better = _is_better(value, state["best"], mode)
                    if better:  # the averaged weights, with train.ema
                        best_state = {k: v.detach().cpu().clone()
                                      for k, v in steps.state_dict().items()}
                state["history"].append(row)
                if better:
                    state["best"], state["best_epoch"], state["bad_epochs"] = (
                        value, epoch + 1, 0)
                else:
                    state["bad_epochs"] += 1
                state["epoch"] = epoch + 1
                if self.dist.is_main:
                    write_history(self.work_dir, state["history"])
                self._emit("epoch_end", epoch=epoch + 1, step=state["step"],
                           metrics=dict(row))
                stop = cfg.patience is not None and state["bad_epochs"] >= cfg.patience
                self._save_checkpoint(optimizer, scheduler, state, best_state)
                self._emit("checkpoint_saved", epoch=epoch + 1, step=state["step"],
                           path=str(self.checkpoint_dir))
                if stop:
                    stopped_early = True
                    break
        if best_state is not None:
            steps.load_state_dict({k: v.to(self.device) for k, v in best_state.items()})
        module.eval()
        self._emit("train_end", epoch=state["epoch"], step=state["step"])
        return TrainResult(module=module, history=state["history"],
                           best_epoch=state["best_epoch"],
                           monitor=self.monitor, seconds=time.perf_counter() - started,
                           stopped_early=stopped_early)

    def _should_stop(self, stop_signal: StopSignals, step: int, last: bool) -> bool:
        """Whether a stop was requested, agreed by all ranks (they must stop at the same
        step). Across processes the check is a collective, so it runs every 16 steps."""
        if not self.dist.enabled:
            return stop_signal.requested is not None
        if step % 16 and not last:
            return False
        return any_rank(stop_signal.requested is not None, self.device)

    def _train_batch(self, forward_module: nn.Module, batch: Any,
                     state: dict[str, Any], *, sync: bool) -> None:
        """Forward and backward on one (micro-)batch; DDP syncs gradients only at ``sync``."""
        from polymodal.data.collate import move_batch

        batch = move_batch(batch, self.device)
        no_sync = getattr(forward_module, "no_sync", None)
        context = no_sync() if (no_sync is not None and not sync) else contextlib.nullcontext()
        with context:
            with autocast(self.device, self.amp_dtype):
                loss = self.steps.training_step(forward_module, batch)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise NonFiniteLoss(
                    f"training stopped: the loss is {value} at epoch {state['epoch'] + 1}, "
                    f"batch {state['batch'] + 1}; check the data for extreme values, or "
                    "lower train.lr")
            self.scaler.scale(loss.float() / self.cfg.grad_accum).backward()
        n = self.steps.batch_size(batch)
        state["loss_sum"] += value * n
        state["seen"] += n

    def _optimizer_step(self, optimizer: Any, scheduler: Any) -> None:
        if self.cfg.grad_clip:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(self.steps.module.parameters(), self.cfg.grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()

    def _epoch_row(self, epoch: int, state: dict[str, Any], scheduler: Any,
                   samples_per_s: float) -> dict[str, Any]:
        loss_sum, seen = sum_across([state["loss_sum"], float(state["seen"])], self.device)
        return {"epoch": epoch + 1, "step": state["step"],
                "train_loss": loss_sum / max(seen, 1.0),
                "lr": scheduler.get_last_lr()[0],
                "samples_per_s": samples_per_s * self.dist.world_size}

    @torch.inference_mode()
    def _run_validation(self, forward_module: nn.Module, val_loader: Any) -> dict[str, Any]:
        from polymodal.data.collate import move_batch

        module = self.steps.module
        was_training = module.training
        module.eval()
        try:
            for batch in val_loader:
                with autocast(self.device, self.amp_dtype):
                    self.steps.validation_step(module, move_batch(batch, self.device))
            return self.steps.compute_metrics()
        finally:
            module.train(was_training)

    def _validate(self, forward_module: nn.Module, val_loader: Any,
                  row: dict[str, Any]) -> tuple[float, str]:
        """Validation metrics into ``row``; returns the monitored value and its mode."""
        if val_loader is None:  # no validation data: keep the epoch with the lowest loss
            return row["train_loss"], "min"
        val = self._run_validation(forward_module, val_loader)
        row.update({f"val_{k}": v for k, v in val.items() if not isinstance(v, dict)})
        if self.monitor not in val:
            raise SpecError("spec: train.monitor: " + str(unknown(
                "validation metric", self.monitor,
                [k for k, v in val.items() if not isinstance(v, dict)])))
        return float(val[self.monitor]), self.monitor_mode

    def _save_checkpoint(self, optimizer: Any, scheduler: Any, state: dict[str, Any],
                         best_state: dict[str, torch.Tensor] | None) -> None:
        if not self.dist.is_main:
            barrier()  # wait until rank 0 has written it, so no rank exits before
            return
        extra = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "ema": self.average.state() if self.average is not None else None,
        }
        payload = dict(state, python_rng=_jsonable_rng(random.getstate()),
                       model_spec=self.steps.identity())
        save_checkpoint(self.work_dir, weights=self.steps.state_dict(),
                        best=best_state, state=payload, extra=extra)
        barrier()

    def _load_checkpoint(self, directory: Path, optimizer: Any, scheduler: Any
                         ) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
        weights, best, state, extra = load_checkpoint(directory, self.device)
        if state.get("model_spec") != self.steps.identity():
            raise CheckpointError(
                f"--resume: the checkpoint in {directory} was written for another model "
                "(inputs, fusion or task changed); train again without --resume")
        try:
            self.steps.load_state_dict(weights)
            optimizer.load_state_dict(extra["optimizer"])
            scheduler.load_state_dict(extra["scheduler"])
            self.scaler.load_state_dict(extra["scaler"])
            torch.set_rng_state(extra["torch_rng"].cpu())
            if self.average is not None and extra.get("ema") is not None:
                self.average.load_state(extra["ema"])
            random.setstate(_restore_rng(state.pop("python_rng")))
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"--resume: the checkpoint in {directory} does not fit "
                                  f"this model ({str(exc).splitlines()[0][:160]})") from None
        if extra["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(extra["cuda_rng"])
        state.pop("model_spec", None)
        return state, best


def _jsonable_rng(rng_state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = rng_state
    return [version, list(internal), gauss]


def _restore_rng(saved: list[Any]) -> tuple[Any, ...]:
    return (saved[0], tuple(saved[1]), saved[2])
