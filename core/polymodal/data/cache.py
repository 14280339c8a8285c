"""Embedded data sets written once under the polymodal cache directory
(``$POLYMODAL_CACHE``, default ``~/.cache/polymodal``): image files, DICOM files, anything a
scenario builds from a package's data on first use. Two processes asking at once (two
trainings, parallel tests) build it once: the second waits on a lock, then reads what the
first wrote."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polymodal.records import Record


def cache_dir(name: str) -> Path:
    """``$POLYMODAL_CACHE/NAME`` (not created)."""
    root = Path(os.environ.get("POLYMODAL_CACHE", Path.home() / ".cache" / "polymodal"))
    return root / name


def build_once(directory: Path, manifest: Path, build: Callable[[], Any]) -> None:
    """Run ``build()`` unless ``manifest`` exists, under a file lock in ``directory``;
    ``build`` writes ``manifest`` last (atomically), so its presence means complete."""
    import fcntl

    if manifest.is_file():
        return
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not manifest.is_file():  # not built while this process waited
            build()


def cached_records(directory: Path, build: Callable[[Path], list[Record]]) -> list[Record]:
    """The records of a data set cached in ``directory``: ``build(directory)`` writes its
    files and returns the records the first time; they are kept in ``records.jsonl``."""
    manifest = directory / "records.jsonl"

    def write() -> None:
        records = build(directory)
        partial = manifest.with_suffix(".partial")
        partial.write_text("".join(json.dumps(r) + "\n" for r in records))
        partial.replace(manifest)

    build_once(directory, manifest, write)
    return [json.loads(line) for line in manifest.read_text().splitlines()]
