"""Predictions that are pictures (a generated image, a segmentation mask): written as PNG
files by ``polymodal predict --out DIR`` (``--grid``: one grid of them all too), or returned
base64-encoded (the JSON lines without ``--out``, and served answers)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import torch


class PngOutputs:
    """The ``writes_files`` half of a predictor: ``write_files_to``/``finish_files`` for the
    CLI, ``png_result`` for each prediction."""

    writes_files = True

    def __init__(self) -> None:
        self.output_dir: Path | None = None
        self.output_shown: Path | None = None
        self._written = 0
        self._grid: list[torch.Tensor] | None = None

    def write_files_to(self, directory: Path, shown_as: Path | None = None,
                       grid: bool = False) -> None:
        """Write each predicted picture into ``directory`` (named in the results as under
        ``shown_as``, where the directory will be once complete); ``grid``: keep them for
        ``finish_files`` to write ``grid.png`` too."""
        self.output_dir, self.output_shown = Path(directory), Path(shown_as or directory)
        self._written = 0
        self._grid = [] if grid else None

    def finish_files(self, columns: int = 8) -> None:
        """``grid.png``: every picture written since ``write_files_to``, in file-name order,
        ``columns`` to a row (when a grid was asked for)."""
        from torchvision.utils import save_image

        if self._grid and self.output_dir is not None:
            save_image(torch.stack(self._grid), str(self.output_dir / "grid.png"),
                       nrow=min(columns, len(self._grid)), padding=1, pad_value=0.5)
        self._grid = None

    def png_result(self, png: bytes, key: str, stem: str = "",
                   tile: torch.Tensor | None = None) -> dict[str, Any]:
        """``{key: path}`` of the PNG written under ``--out``, else ``{key_png_base64:
        ...}``; ``tile`` ([C, H, W] in [0, 1]) is what the grid shows of it."""
        if self.output_dir is None:
            return {f"{key}_png_base64": base64.b64encode(png).decode("ascii")}
        self._written += 1
        name = f"{self._written:05d}{'-' + stem if stem else ''}.png"
        (self.output_dir / name).write_bytes(png)
        if self._grid is not None and tile is not None:
            self._grid.append(tile.cpu())
        return {key: str((self.output_shown or self.output_dir) / name)}
