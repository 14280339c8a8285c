"""The trainer: AdamW, warmup + cosine/linear schedule, gradient clipping and accumulation,
early stopping on a validation metric, best-checkpoint selection, resumable checkpoints,
autocast on CUDA, length-bucketed batches, rich progress bars.

Checkpoints (``<work>/checkpoints/last/``, see ``polymodal.checkpoint``) hold the model,
optimizer, scheduler, trainer state and RNG states in safetensors + JSON; they are written
atomically and never unpickled.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
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
from polymodal.data.collate import field_value, model_collator, move_batch, shared_key
from polymodal.data.loader import make_loader, record_lengths
from polymodal.device import autocast, autocast_dtype
from polymodal.distributed import SINGLE, DistContext, any_rank, barrier, sum_across
from polymodal.errors import NonFiniteLoss, SpecError, TrainingInterrupted, unknown
from polymodal.evaluation import evaluate_batches
from polymodal.model import MultimodalModel
from polymodal.records import Record
from polymodal.reporting import write_history
from polymodal.spec import Spec
from polymodal.tasks.base import batch_size

EventHook = Callable[[str, dict[str, Any]], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        if schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def param_groups(model: MultimodalModel, spec: Spec) -> list[dict[str, Any]]:
    """AdamW groups: per-input learning rates; no weight decay on biases and norms."""
    lr_of = {f"encoders.{i.name}.": i.lr for i in spec.inputs if i.lr is not None}
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = next((v for k, v in lr_of.items() if name.startswith(k)), spec.train.lr)
        decay = 0.0 if param.ndim < 2 else spec.train.weight_decay
        groups.setdefault((lr, decay), []).append(param)
    return [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if mode == "max" else value < best


@dataclass
class TrainResult:
    model: MultimodalModel
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    monitor: str = "loss"
    seconds: float = 0.0
    stopped_early: bool = False


class StopSignals:
    """Turn SIGINT/SIGTERM into a request the training loop honours at the next optimizer
    step (a checkpoint is saved there), instead of dying mid-write."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        import signal

        if self.requested is not None:  # a second signal: give up at once
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    def __init__(self, spec: Spec, model: MultimodalModel, *, work_dir: Path,
                 device: torch.device, on_event: EventHook | None = None,
                 progress: bool = True, dist: DistContext = SINGLE) -> None:
        self.spec = spec
        self.dist = dist
        self.model = model
        self.work_dir = Path(work_dir)
        self.device = device
        self.on_event = on_event or (lambda event, state: None)
        self.progress = progress
        self.amp_dtype = autocast_dtype(device, spec.train.precision)
        self.scaler = torch.amp.GradScaler(
            device.type, enabled=self.amp_dtype == torch.float16 and device.type == "cuda"
        )
        task = model.task
        self.monitor = spec.train.monitor or task.monitor
        self.monitor_mode = "min" if self.monitor in task.minimized else "max"

    @property
    def checkpoint_dir(self) -> Path:
        return checkpoints_dir(self.work_dir) / LAST

    def _loader(self, records: list[Record], *, train: bool) -> Any:
        cfg = self.spec.train
        ctx = self.dist
        shared = cfg.group_by if train else None
        collate = model_collator(self.model, with_target=True, shared=shared)
        if not train and ctx.enabled:  # each rank evaluates its own slice; metrics are synced
            records = records[ctx.rank::ctx.world_size]
        groups = lengths = None
        if shared is not None:
            inp = next(i for i in self.spec.inputs if i.name == shared)
            groups = [shared_key(field_value(r, inp)) for r in records]
        elif cfg.bucket_by_length:
            lengths = record_lengths(records, self.model)
        size = cfg.batch_size if train else (cfg.eval_batch_size or cfg.batch_size * 2)
        return make_loader(records, collate, batch_size=size, shuffle=train, seed=cfg.seed,
                           lengths=lengths, groups=groups, num_workers=cfg.num_workers,
                           pin_memory=self.device.type == "cuda",
                           rank=ctx.rank if train else 0,
                           world_size=ctx.world_size if train else 1)

    def _emit(self, event: str, **state: Any) -> None:
        if self.dist.is_main:
            self.on_event(event, {"out_dir": str(self.work_dir), **state})

    def _wrapped(self) -> nn.Module:
        """The module to call in training: DDP around the model when distributed."""
        if not self.dist.enabled:
            return self.model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids)

    def fit(self, train_records: list[Record], val_records: list[Record],
            resume: bool = False) -> TrainResult:
        cfg = self.spec.train
        seed_everything(cfg.seed)
        model = self.model
        forward_model = self._wrapped()
        train_loader = self._loader(train_records, train=True)
        val_loader = self._loader(val_records, train=False) if val_records else None
        optimizer = torch.optim.AdamW(param_groups(model, self.spec))
        batches = len(train_loader.batch_sampler)
        steps_per_epoch = math.ceil(batches / cfg.grad_accum)
        total = steps_per_epoch * cfg.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(cfg.schedule, int(cfg.warmup * total), total)
        )
        state: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "best": None,
                                 "best_epoch": 0, "bad_epochs": 0, "history": [],
                                 "loss_sum": 0.0, "seen": 0}
        best_state: dict[str, torch.Tensor] | None = None
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
                model.train()
                t0 = time.perf_counter()
                seen_at_start = state["seen"]
                with EpochProgress(self.progress and self.dist.is_main,
                                   f"epoch {epoch + 1}/{cfg.epochs}", batches,
                                   completed=first) as advance:
                    for index, batch in enumerate(train_loader, start=first):
                        boundary = (index + 1) % cfg.grad_accum == 0 or index + 1 == batches
                        self._train_batch(forward_model, batch, state, sync=boundary)
                        if boundary:
                            self._optimizer_step(optimizer, scheduler)
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
                value, mode = self._validate(forward_model, val_loader, row)
                state["history"].append(row)
                if _is_better(value, state["best"], mode):
                    state["best"], state["best_epoch"], state["bad_epochs"] = (
                        value, epoch + 1, 0)
                    best_state = {k: v.detach().cpu().clone()
                                  for k, v in model.trainable_state_dict().items()}
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
            model.load_state_dict(best_state, strict=False)
        self._emit("train_end", epoch=state["epoch"], step=state["step"])
        return TrainResult(model=model, history=state["history"],
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

    def _train_batch(self, forward_model: nn.Module, batch: dict[str, Any],
                     state: dict[str, Any], *, sync: bool) -> None:
        """Forward and backward on one (micro-)batch; DDP syncs gradients only at ``sync``."""
        import contextlib

        batch = move_batch(batch, self.device)
        no_sync = getattr(forward_model, "no_sync", None)
        context = no_sync() if (no_sync is not None and not sync) else contextlib.nullcontext()
        with context:
            with autocast(self.device, self.amp_dtype):
                outputs = forward_model(batch["inputs"], batch["present"], batch.get("repeat"))
            loss = self.model.task.loss(outputs, batch)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise NonFiniteLoss(
                    f"training stopped: the loss is {value} at epoch {state['epoch'] + 1}, "
                    f"batch {state['batch'] + 1}; check the data for extreme values, or "
                    "lower train.lr")
            self.scaler.scale(loss / self.spec.train.grad_accum).backward()
        n = batch_size(batch)
        state["loss_sum"] += value * n
        state["seen"] += n

    def _optimizer_step(self, optimizer: Any, scheduler: Any) -> None:
        if self.spec.train.grad_clip:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.train.grad_clip)
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

    def _validate(self, forward_model: nn.Module, val_loader: Any,
                  row: dict[str, Any]) -> tuple[float, str]:
        """Validation metrics into ``row``; returns the monitored value and its mode."""
        if val_loader is None:  # no validation data: keep the epoch with the lowest loss
            return row["train_loss"], "min"
        val = evaluate_batches(self.model, val_loader, self.device, self.amp_dtype)
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
        }
        payload = dict(state, python_rng=_jsonable_rng(random.getstate()),
                       model_spec=_model_spec(self.spec))
        save_checkpoint(self.work_dir, weights=self.model.trainable_state_dict(),
                        best=best_state, state=payload, extra=extra)
        barrier()

    def _load_checkpoint(self, directory: Path, optimizer: Any, scheduler: Any
                         ) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
        weights, best, state, extra = load_checkpoint(directory, self.device)
        if state.get("model_spec") != _model_spec(self.spec):
            raise CheckpointError(
                f"--resume: the checkpoint in {directory} was written for another model "
                "(inputs, fusion or task changed); train again without --resume")
        try:
            self.model.load_state_dict(weights, strict=False)
            optimizer.load_state_dict(extra["optimizer"])
            scheduler.load_state_dict(extra["scheduler"])
            self.scaler.load_state_dict(extra["scaler"])
            torch.set_rng_state(extra["torch_rng"].cpu())
            random.setstate(_restore_rng(state.pop("python_rng")))
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"--resume: the checkpoint in {directory} does not fit "
                                  f"this model ({str(exc).splitlines()[0][:160]})") from None
        if extra["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(extra["cuda_rng"])
        state.pop("model_spec", None)
        return state, best


def _model_spec(spec: Spec) -> dict[str, Any]:
    """The parts of a spec a checkpoint's tensors depend on (training settings may change
    between runs: more epochs, another learning rate)."""
    data = spec.to_dict()
    return {key: data[key] for key in ("inputs", "fusion", "task")}


def _jsonable_rng(rng_state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = rng_state
    return [version, list(internal), gauss]


def _restore_rng(saved: list[Any]) -> tuple[Any, ...]:
    return (saved[0], tuple(saved[1]), saved[2])


class EpochProgress:
    """A rich progress bar for one epoch, or nothing when progress is off."""

    def __init__(self, enabled: bool, description: str, total: int,
                 completed: int = 0) -> None:
        self.enabled, self.description, self.total = enabled, description, total
        self.completed = completed
        self._bar: Any = None

    def __enter__(self) -> Callable[[float], None]:
        if not self.enabled:
            return lambda loss: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                             TimeElapsedColumn(), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=False)
        self._bar.start()
        task_id = self._bar.add_task(self.description, total=self.total,
                                     completed=self.completed, loss=float("nan"))
        return lambda loss: self._bar.update(task_id, advance=1, loss=loss)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
