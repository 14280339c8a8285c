"""A training run from spec to model directory: read data, split, train, evaluate on
held-out data, optional modality ablation, reports, atomic artifact.

While training, work happens in ``OUT.partial/`` (checkpoints, metrics.jsonl); only a
finished run is renamed to ``OUT``, so ``OUT`` is either absent or a complete model.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.data.readers import columns_of, read_records
from polymodal.errors import DataError, PolymodalError, TrainingInterrupted
from polymodal.records import Record
from polymodal.spec import Spec, check_columns


@dataclass
class RunResult:
    out_dir: Path
    metrics: dict[str, Any]
    seconds: float
    comparisons: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def load_split(spec: Spec, source: str, records: list[Record] | None = None) -> list[Record]:
    """Read a data source (or take given records), check its columns, drop rows without a
    target, and apply ``data.limit``."""
    from polymodal.encoders.numeric import check_numbers

    if records is None:
        records = read_records(source)
    check_columns(spec, columns_of(records), source)
    check_numbers(records, [f for i in spec.inputs if i.modality == "numeric"
                            for f in i.fields], f"{source}: record")
    kept = [r for r in records if r.get(spec.task.target) is not None]
    if not kept:
        raise DataError(f"{source}: no record has a value for target {spec.task.target!r}")
    if spec.data.limit:
        kept = kept[: spec.data.limit]
    return kept


def split_validation(records: list[Record], fraction: float, seed: int
                     ) -> tuple[list[Record], list[Record]]:
    if fraction <= 0:
        return records, []
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_val = max(1, int(round(len(records) * fraction)))
    if n_val >= len(records):
        raise DataError(f"only {len(records)} records: too few to hold out a validation split")
    val_idx = set(order[:n_val])
    return ([r for i, r in enumerate(records) if i not in val_idx],
            [r for i, r in enumerate(records) if i in val_idx])


def _event_hook() -> Any:
    from polymodal.plugins import get_plugin_manager

    hook = get_plugin_manager().hook.on_training_event

    def emit(event: str, state: dict[str, Any]) -> None:
        hook(event=event, state=dict(state))

    return emit


def fit_model(spec: Spec, train: list[Record], val: list[Record], work_dir: Path, *,
              device: Any, resume: bool = False, progress: bool = True,
              dist: Any = None) -> Any:
    """Build a model for ``spec`` on ``train`` and train it; returns a TrainResult."""
    import torch

    from polymodal.model import build_model, build_task
    from polymodal.trainer import Trainer, seed_everything

    device = torch.device(device)
    seed_everything(spec.train.seed)
    task = build_task(spec)
    task.fit([r.get(spec.task.target) for r in train])
    model = build_model(spec, task=task, train_records=train, device=device)
    trainer = Trainer(spec, model, work_dir=work_dir, device=device, on_event=_event_hook(),
                      progress=progress, **({"dist": dist} if dist is not None else {}))
    return trainer.fit(train, val, resume=resume)


def _evaluate(model: Any, records: list[Record], spec: Spec, device: Any) -> dict[str, Any]:
    from polymodal.data.collate import ordered_loader
    from polymodal.evaluation import evaluate_batches

    size = spec.train.eval_batch_size or spec.train.batch_size * 2
    return evaluate_batches(model, ordered_loader(model, records, size, with_target=True),
                            device)


def _prepare_work_dir(out_dir: Path, resume: bool) -> tuple[Path, bool]:
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


def run_training(spec: Spec, out_dir: str | Path, *, train_records: list[Record] | None = None,
                 test_records: list[Record] | None = None, resume: bool = False,
                 device: str | None = None, progress: bool = True,
                 ablate: bool | None = None) -> RunResult:
    """Train ``spec`` and write a model directory at ``out_dir``."""
    from polymodal import artifacts, distributed
    from polymodal.checkpoint import drop_checkpoints, find_checkpoint

    started = time.perf_counter()
    out_dir = artifacts.check_output_dir(out_dir)
    if train_records is None and not spec.data.train:
        raise PolymodalError("spec: data.train is not set and no training data was given")
    records = load_split(spec, spec.data.train or "<records>", train_records)
    if isinstance(spec.data.validation, str):
        train, val = records, load_split(spec, spec.data.validation)
    else:
        train, val = split_validation(records, float(spec.data.validation), spec.train.seed)
    test = None
    if test_records is not None or spec.data.test:
        test = load_split(spec, spec.data.test or "<test records>", test_records)
    ctx = distributed.init_from_env()
    torch_device = distributed.device_for(ctx, device)
    resume = resume or distributed.restart_count() > 0  # restarted by the elastic agent

    work = out_dir.parent / f"{out_dir.name}.partial"
    fresh = True
    if ctx.is_main:
        work, fresh = _prepare_work_dir(out_dir, resume)
    distributed.barrier()
    try:
        result = fit_model(spec, train, val, work, device=torch_device, resume=resume,
                           progress=progress, dist=ctx)
        distributed.barrier()
        distributed.shutdown()
        if not ctx.is_main:  # rank 0 alone evaluates and writes the model directory
            return RunResult(out_dir=out_dir, metrics={}, seconds=result.seconds)
        model = result.model
        metrics: dict[str, Any] = {"best_epoch": result.best_epoch,
                                   "stopped_early": result.stopped_early,
                                   "train_seconds": round(result.seconds, 2)}
        if val:
            metrics["validation"] = _evaluate(model, val, spec, torch_device)
        if test:
            metrics["test"] = _evaluate(model, test, spec, torch_device)
        held_out = test or val
        comparisons: dict[str, dict[str, dict[str, Any]]] = {}
        do_ablate = spec.ablation if ablate is None else ablate
        if do_ablate and len(spec.inputs) > 1 and held_out:
            comparisons["modality ablation (held-out)"] = _ablation(
                spec, train, val, held_out, work, torch_device, progress,
                metrics["test" if test else "validation"])
        _write_run(work, spec, result, metrics, comparisons, counts=(len(train), len(val),
                                                                     len(test or [])),
                   fingerprint=artifacts.data_fingerprint(train), device=torch_device)
    except BaseException as exc:
        distributed.shutdown()
        # An interrupted or crashed run keeps its checkpoint for --resume; a run that
        # diverged (NaN loss) would only diverge again, and a user mistake (a corrupt
        # checkpoint, a changed spec) is fixed by the user: nothing of those is kept,
        # except an OUT.partial that was there before this run.
        progressed = isinstance(exc, TrainingInterrupted) or not isinstance(
            exc, PolymodalError)
        if ctx.is_main and fresh and (not progressed or find_checkpoint(work) is None):
            shutil.rmtree(work, ignore_errors=True)
        raise
    if not spec.train.keep_checkpoint:
        drop_checkpoints(work)
    artifacts.replace_directory(work, out_dir)
    return RunResult(out_dir=out_dir, metrics=metrics, comparisons=comparisons,
                     seconds=time.perf_counter() - started)


def _write_run(work: Path, spec: Spec, result: Any, metrics: dict[str, Any],
               comparisons: dict[str, dict[str, dict[str, Any]]], *,
               counts: tuple[int, int, int], fingerprint: str, device: Any) -> None:
    """Model files, plots, card and report of a finished run into ``work``."""
    from polymodal import artifacts, reporting
    from polymodal.versions import package_versions, plugin_versions

    images = reporting.plot_curves(work, result.history)
    final = metrics.get("test") or metrics.get("validation") or {}
    if "confusion_matrix" in final:
        images.append(reporting.plot_confusion(work, final["confusion_matrix"]))
    versions = {**package_versions(),
                **{f"plugin:{k}": str(v) for k, v in plugin_versions().items()}}
    manifest = {"spec": spec.to_dict(), "versions": versions, "data_fingerprint": fingerprint}
    artifacts.write_model_files(work, result.model, manifest=manifest, metrics=metrics)
    reporting.write_card(work, spec=spec.to_dict(), metrics=metrics, fingerprint=fingerprint,
                         versions=versions)
    n_train, n_val, n_test = counts
    notes = [f"Trained {n_train} records, validated on {n_val}"
             + (f", tested on {n_test}" if n_test else "")
             + f"; best epoch {result.best_epoch} by {result.monitor}; "
             f"{result.seconds:.1f} s on {device}."]
    reporting.write_report(work, title=f"polymodal run: {spec.name}", spec=spec.to_dict(),
                           metrics=metrics, history=result.history, images=images,
                           comparisons=comparisons, notes=notes)


def _ablation(spec: Spec, train: list[Record], val: list[Record], held_out: list[Record],
              work: Path, device: Any, progress: bool, full: dict[str, Any]
              ) -> dict[str, dict[str, Any]]:
    """The fused model beside one model per single input, on the same held-out data."""
    rows = {f"all inputs ({spec.fusion.name})": full}
    for inp in spec.inputs:
        sub = spec.without_inputs([inp.name])
        if spec.train.ablation_epochs:
            sub.train.epochs = spec.train.ablation_epochs
        sub_dir = work / "ablation" / inp.name
        sub_dir.mkdir(parents=True, exist_ok=True)
        result = fit_model(sub, train, val, sub_dir, device=device, progress=progress)
        rows[f"only {inp.name}"] = _evaluate(result.model, held_out, sub, device)
    shutil.rmtree(work / "ablation", ignore_errors=True)
    return rows

