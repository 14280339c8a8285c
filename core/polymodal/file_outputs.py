"""Predictions that are files (a generated image, a mask, synthesized speech): written into
the directory of ``polymodal predict --out DIR``, or returned base64-encoded (the JSON lines
without ``--out``, and served answers)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any


class FileOutputs:
    """The ``writes_files`` half of a predictor: ``write_files_to``/``finish_files`` for the
    CLI, ``file_result`` for each prediction."""

    writes_files = True

    def __init__(self) -> None:
        self.output_dir: Path | None = None
        self.output_shown: Path | None = None
        self._written = 0

    def write_files_to(self, directory: Path, shown_as: Path | None = None,
                       grid: bool = False) -> None:
        """Write each predicted file into ``directory`` (named in the results as under
        ``shown_as``, where the directory will be once complete)."""
        self.output_dir, self.output_shown = Path(directory), Path(shown_as or directory)
        self._written = 0

    def finish_files(self, columns: int = 8) -> None:
        """What is left to write once every prediction is (nothing, unless overridden)."""

    def file_result(self, data: bytes, key: str, suffix: str, stem: str = "") -> dict[str, Any]:
        """``{key: path}`` of the file written under ``--out``, else
        ``{key_SUFFIX_base64: ...}``."""
        if self.output_dir is None:
            return {f"{key}_{suffix}_base64": base64.b64encode(data).decode("ascii")}
        self._written += 1
        name = f"{self._written:05d}{'-' + stem if stem else ''}.{suffix}"
        (self.output_dir / name).write_bytes(data)
        return {key: str((self.output_shown or self.output_dir) / name)}
