"""Model directories: written atomically, loaded without unpickling anything.

Layout: ``polymodal.yaml`` (resolved spec, task state, versions, data fingerprint),
``model.safetensors`` (weights, minus frozen hub-shared encoders), ``processors/<field>.json``
and ``processors/<field>/`` (tokenizers ...), ``metrics.json``, ``card.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from polymodal.errors import ArtifactError

MANIFEST = "polymodal.yaml"
WEIGHTS = "model.safetensors"
FORMAT_VERSION = 1


def data_fingerprint(records: list[dict[str, Any]]) -> str:
    """A sha256 over the training records, so a model says what it was trained on."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return f"sha256:{digest.hexdigest()[:32]} ({len(records)} records)"


@contextlib.contextmanager
def building_directory(directory: str | Path) -> Iterator[Path]:
    """Write a directory atomically: files go into ``DIR.partial``, which replaces ``DIR`` by
    rename when the block finishes; on an error nothing is left behind."""
    directory = Path(directory)
    work = directory.parent / f"{directory.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
        replace_directory(work, directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_manifest(directory: Path, kind: str, spec: dict[str, Any],
                   metrics: dict[str, Any]) -> None:
    """``polymodal.yaml`` (kind, spec, headline metrics) and ``metrics.json`` of a model
    directory that is not a spec-trained network (recommenders, retrieval, captioning)."""
    manifest = {"format_version": 1, "kind": kind, "spec": spec,
                "metrics": {k: v for k, v in metrics.items() if k != "history"}}
    (directory / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def replace_directory(source: Path, target: Path) -> None:
    """Move a finished directory to ``target`` by rename, replacing an older one there."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(source, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_model_files(directory: Path, model: Any, *, manifest: dict[str, Any],
                      metrics: dict[str, Any] | None = None) -> None:
    """Write weights, processors and manifest of a trained model into ``directory``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in model.trainable_state_dict().items()}
    save_file(state, str(directory / WEIGHTS), metadata={"format": "polymodal"})
    proc_dir = directory / "processors"
    proc_dir.mkdir(exist_ok=True)
    for name, processor in model.processors.items():
        (proc_dir / f"{name}.json").write_text(json.dumps(processor.state(), indent=1))
        files = proc_dir / name
        processor.save_files(files)
    (directory / "metrics.json").write_text(json.dumps(metrics or {}, indent=2))
    manifest = {"format_version": FORMAT_VERSION, **manifest,
                "task_state": model.task.state(),
                "encoders": {n: e.export_config() for n, e in model.encoders.items()}}
    (directory / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))


def read_manifest(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"model directory not found: {directory}")
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a polymodal model directory (no {MANIFEST})")
    try:
        manifest = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise ArtifactError(f"{path} is not valid YAML") from None
    if not isinstance(manifest, dict) or "spec" not in manifest:
        raise ArtifactError(f"{path} has no spec")
    return manifest


def load_model_dir(directory: str | Path, device: Any = None) -> tuple[Any, dict[str, Any]]:
    """Rebuild a trained model from its directory: (model, manifest)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from polymodal.model import build_model, build_task
    from polymodal.spec import parse_spec

    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = parse_spec(manifest["spec"])
    task = build_task(spec)
    task.load_state(manifest.get("task_state", {}))
    states = {}
    for inp in spec.inputs:
        path = directory / "processors" / f"{inp.name}.json"
        if not path.is_file():
            raise ArtifactError(f"{directory}: missing processor file {path.name}")
        states[inp.name] = json.loads(path.read_text())
    device = device or torch.device("cpu")
    model = build_model(spec, task=task, processor_states=states, artifact_dir=directory,
                        device=device)
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise ArtifactError(f"{directory}: missing {WEIGHTS}")
    try:
        state = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{weights} is corrupt or unreadable: {exc}") from None
    expected = set(model.trainable_state_dict())
    missing, extra = expected - set(state), set(state) - expected
    if missing or extra:
        raise ArtifactError(
            f"{weights} does not match the spec: {len(missing)} missing and {len(extra)} "
            f"unexpected tensors (e.g. {sorted(missing or extra)[0]})"
        )
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ArtifactError(f"{weights} does not match the spec: {str(exc)[:200]}") from None
    model.eval()
    return model, manifest

