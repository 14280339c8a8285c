"""A training run from spec to model directory: read data, split, train, evaluate on
held-out data, optional modality ablation, reports, atomic artifact.

While training, work happens in ``OUT.partial/`` (checkpoints, metrics.jsonl); only a
finished run is renamed to ``OUT``, so ``OUT`` is either absent or a complete model.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.data.readers import columns_of, read_records
from polymodal.errors import DataError, PolymodalError
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


def split_validation(records: list[Record], fraction: float, seed: int,
                     group: str | None = None) -> tuple[list[Record], list[Record]]:
    """Hold out ``fraction`` of the records (seeded), or with ``group`` that share of the
    distinct values of that field, each with all its records (a record without the field
    is a group of its own)."""
    if fraction <= 0:
        return records, []
    if group is None:
        keys: list[Any] = list(range(len(records)))
        groups: list[Any] = list(keys)
    else:
        keys = [str(r[group]) if r.get(group) is not None else f"\0{i}"
                for i, r in enumerate(records)]
        groups = sorted(set(keys))
    random.Random(seed).shuffle(groups)
    n_val = max(1, int(round(len(groups) * fraction)))
    if n_val >= len(groups):
        what = f"groups of {group!r}" if group else "records"
        raise DataError(f"only {len(groups)} {what}: too few to hold out a validation split")
    held_out = set(groups[:n_val])
    return ([r for r, k in zip(records, keys, strict=True) if k not in held_out],
            [r for r, k in zip(records, keys, strict=True) if k in held_out])


def fit_model(spec: Spec, train: list[Record], val: list[Record], work_dir: Path, *,
              device: Any, resume: bool = False, progress: bool = True,
              dist: Any = None) -> Any:
    """Build a model for ``spec`` on ``train`` and train it; returns a TrainResult."""
    import torch

    from polymodal.model import build_model, build_task
    from polymodal.training import SpecModelSteps, fit_steps, seed_everything

    device = torch.device(device)
    seed_everything(spec.train.seed)
    task = build_task(spec)
    task.fit([r.get(spec.task.target) for r in train])
    model = build_model(spec, task=task, train_records=train, device=device)
    steps = SpecModelSteps(spec, model, device)
    return fit_steps(spec.train, steps, train, val, work_dir, device=device, resume=resume,
                     progress=progress, dist=dist)


def _evaluate(model: Any, records: list[Record], spec: Spec, device: Any) -> dict[str, Any]:
    from polymodal.data.collate import ordered_loader
    from polymodal.evaluation import evaluate_batches

    size = spec.train.eval_batch_size or spec.train.batch_size * 2
    return evaluate_batches(model, ordered_loader(model, records, size, with_target=True),
                            device)


def run_training(spec: Spec, out_dir: str | Path, *, train_records: list[Record] | None = None,
                 test_records: list[Record] | None = None, resume: bool = False,
                 device: str | None = None, progress: bool = True,
                 ablate: bool | None = None,
                 baselines: dict[str, Any] | None = None,
                 extra_tests: dict[str, Callable[[], list[Record]]] | None = None
                 ) -> RunResult:
    """Train ``spec`` and write a model directory at ``out_dir``; ``extra_tests``: further
    held-out sets by name (``Scenario.extra_tests``), scored beside the test split."""
    from polymodal import artifacts, distributed
    from polymodal.training import training_directory

    started = time.perf_counter()
    out_dir = artifacts.check_output_dir(out_dir)
    if train_records is None and not spec.data.train:
        raise PolymodalError("spec: data.train is not set and no training data was given")
    records = load_split(spec, spec.data.train or "<records>", train_records)
    if isinstance(spec.data.validation, str):
        train, val = records, load_split(spec, spec.data.validation)
    else:
        train, val = split_validation(records, float(spec.data.validation), spec.train.seed,
                                      spec.data.group)
    test = None
    if test_records is not None or spec.data.test:
        test = load_split(spec, spec.data.test or "<test records>", test_records)
    ctx = distributed.init_from_env()
    torch_device = distributed.device_for(ctx, device)
    resume = resume or distributed.restart_count() > 0  # restarted by the elastic agent

    try:
        with training_directory(out_dir, resume=resume, is_main=ctx.is_main,
                                keep_checkpoint=spec.train.keep_checkpoint) as work:
            result = fit_model(spec, train, val, work, device=torch_device, resume=resume,
                               progress=progress, dist=ctx)
            distributed.barrier()
            distributed.shutdown()
            if not ctx.is_main:  # rank 0 alone evaluates and writes the model directory
                return RunResult(out_dir=out_dir, metrics={}, seconds=result.seconds)
            metrics, comparisons = _held_out_metrics(
                spec, result, train, val, test, work, torch_device, progress, ablate,
                baselines or {})
            _extra_test_metrics(spec, result.model, train, extra_tests or {}, baselines or {},
                                torch_device, metrics, comparisons)
            _write_run(work, spec, result, metrics, comparisons, train=train,
                       counts=(len(train), len(val), len(test or [])), device=torch_device)
    finally:
        distributed.shutdown()
    return RunResult(out_dir=out_dir, metrics=metrics, comparisons=comparisons,
                     seconds=time.perf_counter() - started)


def _held_out_metrics(spec: Spec, result: Any, train: list[Record], val: list[Record],
                      test: list[Record] | None, work: Path, device: Any, progress: bool,
                      ablate: bool | None, baselines: dict[str, Any]
                      ) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, Any]]]]:
    """The run's metrics (validation, test, baselines) and the report's comparisons."""
    model = result.model
    metrics: dict[str, Any] = {"best_epoch": result.best_epoch,
                               "stopped_early": result.stopped_early,
                               "train_seconds": round(result.seconds, 2)}
    if val:
        metrics["validation"] = _evaluate(model, val, spec, device)
    if test:
        metrics["test"] = _evaluate(model, test, spec, device)
    held_out = test or val
    final = metrics["test" if test else "validation"] if held_out else {}
    comparisons: dict[str, dict[str, dict[str, Any]]] = {}
    if baselines and held_out:
        metrics["baselines"] = {name: baseline(train, held_out)
                                for name, baseline in baselines.items()}
        comparisons["held-out: model and baselines"] = {"model": final,
                                                        **metrics["baselines"]}
    do_ablate = spec.ablation if ablate is None else ablate
    if do_ablate and len(spec.inputs) > 1 and held_out:
        comparisons["modality ablation (held-out)"] = _ablation(
            spec, train, val, held_out, work, device, progress, final)
    return metrics, comparisons


def _extra_test_metrics(spec: Spec, model: Any, train: list[Record],
                        extra_tests: dict[str, Callable[[], list[Record]]],
                        baselines: dict[str, Any], device: Any, metrics: dict[str, Any],
                        comparisons: dict[str, dict[str, dict[str, Any]]]) -> None:
    """The model (and the baselines) on each further held-out set, into ``metrics``
    (``extra_tests``) and ``comparisons``."""
    for name, load in extra_tests.items():
        records = load_split(spec, name, load())
        scored = _evaluate(model, records, spec, device)
        metrics.setdefault("extra_tests", {})[name] = scored
        comparisons[f"{name}: model and baselines"] = {
            "model": scored, **{b: baseline(train, records) for b, baseline in baselines.items()}}


def _write_run(work: Path, spec: Spec, result: Any, metrics: dict[str, Any],
               comparisons: dict[str, dict[str, dict[str, Any]]], *,
               train: list[Record], counts: tuple[int, int, int], device: Any) -> None:
    """Model files, plots, card and report of a finished run into ``work``."""
    from polymodal import artifacts, reporting

    images = reporting.plot_curves(work, result.history)
    final = metrics.get("test") or metrics.get("validation") or {}
    if "confusion_matrix" in final:
        images.append(reporting.plot_confusion(work, final["confusion_matrix"]))
    if final.get("calibration", {}).get("bins"):
        images.append(reporting.plot_reliability(work, final["calibration"]))
    origin = artifacts.provenance(train)
    versions = origin["versions"]
    manifest = {"spec": spec.to_dict(), **origin}
    artifacts.write_model_files(work, result.model, manifest=manifest, metrics=metrics)
    reporting.write_card(work, spec=spec.to_dict(), metrics=metrics,
                         fingerprint=origin["data_fingerprint"],
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
    """The fused model beside one model per single input, on the same held-out data. An
    input that cannot make a model alone is reported with the reason instead (a task that
    reads another input's token states, as a box read off an image grid does, has no
    model without that input)."""
    from polymodal.errors import SpecError

    rows: dict[str, dict[str, Any]] = {f"all inputs ({spec.fusion.name})": full}
    for inp in spec.inputs:
        sub = spec.without_inputs([inp.name])
        if spec.train.ablation_epochs:
            sub.train.epochs = spec.train.ablation_epochs
        sub_dir = work / "ablation" / inp.name
        sub_dir.mkdir(parents=True, exist_ok=True)
        try:  # a spec that cannot be a model is refused as the model is assembled
            result = fit_model(sub, train, val, sub_dir, device=device, progress=progress)
        except SpecError as exc:
            rows[f"only {inp.name}"] = {"note": f"no model: {exc}"}
            continue
        rows[f"only {inp.name}"] = _evaluate(result.model, held_out, sub, device)
    shutil.rmtree(work / "ablation", ignore_errors=True)
    return rows

