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
        digest.update(json.dumps(record, sort_keys=True, default=_value_digest).encode())
        digest.update(b"\n")
    return f"sha256:{digest.hexdigest()[:32]} ({len(records)} records)"


def _value_digest(value: Any) -> str:
    """A stand-in for a value JSON cannot hold: the digest of its bytes (arrays, images,
    file contents), else its text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    to_bytes = getattr(value, "tobytes", None)
    if callable(to_bytes):
        return f"sha256:{hashlib.sha256(to_bytes()).hexdigest()}:{getattr(value, 'shape', '')}"
    return str(value)


def is_artifact(directory: Path) -> bool:
    """Whether ``directory`` is a polymodal model directory (it has a manifest)."""
    return (directory / MANIFEST).is_file()


def check_output_dir(directory: str | Path, option: str = "--out") -> Path:
    """Refuse an output directory that writing a model there would destroy or cannot use:
    only an absent or empty directory, or an earlier polymodal artifact, may be replaced.
    Called before any training starts (and again just before the final rename); ``option``
    is the command-line option that named it, for the message."""
    directory = Path(directory)
    if directory.name in ("", ".", "..") or directory.resolve() == Path.cwd().resolve():
        raise ArtifactError(f"{option} {directory}: name a new directory, not the current "
                            "or a parent directory")
    if directory.exists() or directory.is_symlink():
        if not directory.is_dir() or directory.is_symlink():
            raise ArtifactError(f"{option} {directory}: exists and is not a directory")
        if not is_artifact(directory) and any(directory.iterdir()):
            raise ArtifactError(f"{option} {directory}: exists and is not a polymodal model "
                                "directory; refusing to replace it (choose another path or "
                                "empty it yourself)")
    return directory


@contextlib.contextmanager
def building_directory(directory: str | Path, option: str = "--out") -> Iterator[Path]:
    """Write a directory atomically: files go into ``DIR.partial``, which replaces ``DIR`` by
    rename when the block finishes; on an error nothing is left behind."""
    directory = check_output_dir(directory, option)
    work = directory.parent / f"{directory.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
        replace_directory(work, directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def provenance(train_records: list[dict[str, Any]]) -> dict[str, Any]:
    """What every artifact records of where it came from: package and plugin versions, and
    a fingerprint of its training data."""
    from polymodal.versions import package_versions, plugin_versions

    versions = {**package_versions(),
                **{f"plugin:{k}": str(v) for k, v in plugin_versions().items()}}
    return {"versions": versions, "data_fingerprint": data_fingerprint(train_records)}


def write_manifest(directory: Path, kind: str, spec: dict[str, Any],
                   metrics: dict[str, Any], *, train_records: list[dict[str, Any]]) -> None:
    """``polymodal.yaml`` (kind, spec, headline metrics, versions, data fingerprint),
    ``metrics.json`` and ``card.md`` of a model directory that is not a spec-trained network
    (recommenders, retrieval, captioning, an index)."""
    from polymodal.reporting import write_card

    origin = provenance(train_records)
    manifest = {"format_version": 1, "kind": kind, "spec": spec, **origin,
                "metrics": {k: v for k, v in metrics.items() if k != "history"}}
    (directory / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_card(directory, spec=spec, metrics=metrics, kind=kind,
               fingerprint=origin["data_fingerprint"], versions=origin["versions"])


def _remove_stale_old_copies(target: Path) -> None:
    """``.OUT.old-PID`` directories left by a replace that was killed half-way."""
    for stale in target.parent.glob(f".{target.name}.old-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue  # another process is replacing the same target right now
        shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def replace_directory(source: Path, target: Path) -> None:
    """Move a finished directory to ``target`` by rename, replacing an older artifact (or an
    empty directory) there; anything else at ``target`` is refused, untouched."""
    check_output_dir(target)
    _remove_stale_old_copies(target)
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
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ArtifactError(f"{path} is not UTF-8 text") from None
    except (yaml.YAMLError, RecursionError):
        raise ArtifactError(f"{path} is not valid YAML") from None
    if not isinstance(manifest, dict) or "spec" not in manifest:
        raise ArtifactError(f"{path} has no spec")
    if not isinstance(manifest["spec"], dict):
        raise ArtifactError(f"{path}: 'spec' is not a mapping")
    return manifest


def inside(directory: Path, *parts: str) -> Path:
    """``directory/parts...``, refused if it resolves outside ``directory`` (a tampered
    manifest naming ``../../x``)."""
    path = directory.joinpath(*parts)
    if not path.resolve().is_relative_to(directory.resolve()):
        raise ArtifactError(f"{directory}: {'/'.join(parts)!r} points outside the model "
                            "directory")
    return path


def read_json_file(path: Path, what: str) -> Any:
    """A JSON file of a model directory, or a one-line ArtifactError."""
    if not path.is_file():
        raise ArtifactError(f"{path.parent.parent}: missing {what} {path.name}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ArtifactError(f"{path}: {what} is corrupt (not valid JSON)") from None


def check_weights(path: Path, state: dict[str, Any], expected: dict[str, Any]) -> None:
    """Refuse weights whose dtype differs from the model's, or that hold NaN/inf."""
    import torch

    for key, tensor in state.items():
        want = expected[key]
        if tensor.dtype != want.dtype:
            raise ArtifactError(f"{path}: tensor {key} is {tensor.dtype}, the model expects "
                                f"{want.dtype}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ArtifactError(f"{path}: tensor {key} holds NaN or infinite values")


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
        path = inside(directory, "processors", f"{inp.name}.json")
        states[inp.name] = read_json_file(path, "processor file")
        if not isinstance(states[inp.name], dict):
            raise ArtifactError(f"{path}: processor file is not a JSON object")
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
    own = model.trainable_state_dict()
    expected = set(own)
    missing, extra = expected - set(state), set(state) - expected
    if missing or extra:
        raise ArtifactError(
            f"{weights} does not match the spec: {len(missing)} missing and {len(extra)} "
            f"unexpected tensors (e.g. {sorted(missing or extra)[0]})"
        )
    check_weights(weights, state, own)
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ArtifactError(f"{weights} does not match the spec: {str(exc)[:200]}") from None
    model.eval()
    return model, manifest

