"""Resumable training state on disk: tensors in safetensors, everything else in JSON.

A checkpoint is a directory ``<work>/checkpoints/last/`` holding ``model.safetensors``
(current weights), ``best.safetensors`` (the best epoch's weights so far), ``state.safetensors``
(optimizer moments, RNG states) and ``trainer_state.json`` (counters, history, scheduler and
scaler state, the spec it was written for). Nothing is pickled, so resuming never runs code
from the file.

A checkpoint is written into ``.last.tmp`` and swapped in by two renames; a process killed
between them leaves ``.last.tmp`` (complete, marked by ``complete``) and ``.last.old``, and
``find_checkpoint`` still finds the newest complete one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from polymodal.errors import PolymodalError

LAST = "last"
COMPLETE = "complete"
STATE_JSON = "trainer_state.json"


class CheckpointError(PolymodalError):
    """A checkpoint cannot be resumed from: corrupt, incomplete or from another spec."""


def checkpoints_dir(work_dir: Path) -> Path:
    return Path(work_dir) / "checkpoints"


def find_checkpoint(work_dir: Path) -> Path | None:
    """The newest complete checkpoint under ``work_dir``, or None."""
    root = checkpoints_dir(work_dir)
    for name in (LAST, f".{LAST}.tmp", f".{LAST}.old"):
        candidate = root / name
        if (candidate / COMPLETE).is_file():
            return candidate
    return None


def _encode(value: Any, tensors: dict[str, Any], prefix: str) -> Any:
    """``value`` with every tensor replaced by ``{"__tensor__": key}`` (stored in
    ``tensors``); dicts with integer keys (optimizer state) keep them as integers."""
    import torch

    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(value, dict):
        if value and all(isinstance(k, int) for k in value):
            return {"__int_keys__": {str(k): _encode(v, tensors, f"{prefix}.{k}")
                                     for k, v in value.items()}}
        return {str(k): _encode(v, tensors, f"{prefix}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)]
    return value


def _decode(value: Any, tensors: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        if set(value) == {"__int_keys__"}:
            return {int(k): _decode(v, tensors) for k, v in value["__int_keys__"].items()}
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def unshared(weights: dict[str, Any]) -> dict[str, Any]:
    """CPU copies safetensors can write: tensors that share memory (tied input and output
    embeddings) become separate copies; loading restores them into the tied parameter."""
    seen: set[int] = set()
    out = {}
    for key, value in weights.items():
        tensor = value.detach().cpu()
        pointer = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone().contiguous() if pointer in seen else tensor.contiguous()
        seen.add(pointer)
    return out


def save_checkpoint(work_dir: Path, *, weights: dict[str, Any],
                    best: dict[str, Any] | None, state: dict[str, Any],
                    extra: dict[str, Any]) -> Path:
    """Write a checkpoint atomically; ``extra`` (optimizer, scheduler, scaler and RNG state)
    may hold tensors at any depth. Returns the checkpoint directory."""
    from safetensors.torch import save_file

    root = checkpoints_dir(work_dir)
    final, tmp, old = root / LAST, root / f".{LAST}.tmp", root / f".{LAST}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(unshared(weights), str(tmp / "model.safetensors"))
    if best is not None:
        save_file(unshared(best), str(tmp / "best.safetensors"))
    tensors: dict[str, Any] = {}
    encoded = _encode(extra, tensors, "extra")
    save_file(tensors, str(tmp / "state.safetensors"))
    (tmp / STATE_JSON).write_text(json.dumps({**state, "extra": encoded}, default=float))
    (tmp / COMPLETE).write_text("")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(directory: Path, device: Any
                    ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any],
                               dict[str, Any]]:
    """(weights, best weights or None, trainer state, extra) of a checkpoint directory;
    CheckpointError with one line if any part is unreadable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        weights = load_file(str(directory / "model.safetensors"), device=str(device))
        best_path = directory / "best.safetensors"
        best = load_file(str(best_path)) if best_path.is_file() else None
        tensors = load_file(str(directory / "state.safetensors"))
        state = json.loads((directory / STATE_JSON).read_text(encoding="utf-8"))
        extra = _decode(state.pop("extra"), tensors)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"--resume: the checkpoint in {directory} is corrupt or "
                              f"incomplete ({type(exc).__name__}); train again without "
                              "--resume") from None
    return weights, best, state, extra


def drop_checkpoints(work_dir: Path) -> None:
    """Remove the resumable state from a finished model directory."""
    shutil.rmtree(checkpoints_dir(work_dir), ignore_errors=True)
