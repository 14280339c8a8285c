"""A training run's directory and events, the same for every scenario.

While training, work happens in ``OUT.partial/`` (checkpoints, metrics.jsonl); only a
finished run is renamed to ``OUT``, so ``OUT`` is either absent or a complete model. An
interrupted or crashed run keeps its checkpoint there for ``--resume``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from polymodal.errors import PolymodalError, TrainingInterrupted
from polymodal.spec import TrainSpec
from polymodal.training.steps import Trainable
from polymodal.training.trainer import EventHook, Trainer, TrainResult


def event_hook() -> EventHook:
    """``on_training_event`` of every loaded plugin, through pluggy."""
    from polymodal.plugins import get_plugin_manager

    hook = get_plugin_manager().hook.on_training_event

    def emit(event: str, state: dict[str, Any]) -> None:
        hook(event=event, state=dict(state))

    return emit


@contextmanager
def fit_events(out_dir: str | Path) -> Iterator[None]:
    """train_start and train_end around a fit that is not a Trainer's (an ALS fit, an index
    build), so a tracking plugin sees every scenario train."""
    emit = event_hook()
    emit("train_start", {"out_dir": str(out_dir), "epoch": 0, "step": 0})
    yield
    emit("train_end", {"out_dir": str(out_dir), "epoch": 1, "step": 0})


def _prepare(out_dir: Path, resume: bool) -> tuple[Path, bool]:
    """``OUT.partial`` to train in, and whether it is new (nothing of it is the user's)."""
    from polymodal.checkpoint import find_checkpoint

    work = out_dir.parent / f"{out_dir.name}.partial"
    if resume:
        if find_checkpoint(work) is None:
            if find_checkpoint(out_dir) is None:
                raise PolymodalError(
                    f"--resume: no checkpoint under {work} or {out_dir} (a finished model "
                    "keeps one only when trained with --keep-checkpoint)")
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(out_dir, work)
            return work, True
        return work, False
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work, True


@contextmanager
def training_directory(out_dir: str | Path, *, resume: bool = False,
                       keep_checkpoint: bool = False, is_main: bool = True) -> Iterator[Path]:
    """The work directory of a run that ends as ``out_dir``. On success it replaces
    ``out_dir`` (checkpoints dropped unless ``keep_checkpoint``); an interrupted or crashed
    run keeps its checkpoint for ``--resume``; a run that diverged or failed on a user
    mistake leaves nothing (except an ``OUT.partial`` that was there before)."""
    from polymodal import artifacts, distributed
    from polymodal.checkpoint import drop_checkpoints, find_checkpoint

    out_dir = artifacts.check_output_dir(out_dir)
    work = out_dir.parent / f"{out_dir.name}.partial"
    fresh = True
    if is_main:
        work, fresh = _prepare(out_dir, resume)
    distributed.barrier()
    try:
        yield work
    except BaseException as exc:
        progressed = isinstance(exc, TrainingInterrupted) or not isinstance(
            exc, PolymodalError)
        if is_main and fresh and (not progressed or find_checkpoint(work) is None):
            shutil.rmtree(work, ignore_errors=True)
        raise
    if not is_main:
        return
    if not keep_checkpoint:
        drop_checkpoints(work)
    artifacts.replace_directory(work, out_dir)


def fit_steps(train: TrainSpec, steps: Trainable, train_items: list[Any],
              val_items: list[Any], work_dir: Path, *, device: Any, resume: bool = False,
              progress: bool = True, dist: Any = None) -> TrainResult:
    """Fit ``steps`` with the one Trainer, its events going to the plugins."""
    import torch

    from polymodal.distributed import SINGLE

    trainer = Trainer(train, steps, work_dir=work_dir, device=torch.device(device),
                      on_event=event_hook(), progress=progress, dist=dist or SINGLE)
    return trainer.fit(train_items, val_items, resume=resume)


def write_run_files(work: Path, *, kind: str, spec: dict[str, Any], metrics: dict[str, Any],
                    result: TrainResult, train_records: list[Any],
                    comparisons: dict[str, dict[str, dict[str, Any]]] | None = None,
                    images: list[str] | None = None) -> None:
    """What every trained artifact has besides its weights: ``polymodal.yaml`` (spec,
    versions, data fingerprint), ``metrics.json``, ``card.md``, loss curves and
    ``report.html`` (``metrics.jsonl`` the Trainer wrote already); ``images``: more PNGs
    of ``work`` (relative paths) for the report, e.g. generated samples."""
    from polymodal import reporting
    from polymodal.artifacts import write_manifest

    metrics = {"best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
               "train_seconds": round(result.seconds, 2), **metrics}
    write_manifest(work, kind, spec, metrics, train_records=train_records)
    images = reporting.plot_curves(work, result.history) + list(images or [])
    title = spec.get("scenario") or kind
    reporting.write_report(work, title=f"polymodal run: {title}", spec=spec, metrics=metrics,
                           history=result.history, images=images,
                           comparisons=comparisons or {},
                           notes=[f"Trained {len(train_records)} records; best epoch "
                                  f"{result.best_epoch} by {result.monitor}; "
                                  f"{result.seconds:.1f} s."])
