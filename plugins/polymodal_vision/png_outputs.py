"""Predictions that are pictures (a generated image, a segmentation mask): the core's file
outputs as PNG files, and with ``--grid`` one grid image of them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import FileOutputs


class PngOutputs(FileOutputs):
    """``png_result`` for each prediction; ``finish_files`` writes the grid."""

    def __init__(self) -> None:
        super().__init__()
        self._grid: list[torch.Tensor] | None = None

    def write_files_to(self, directory: Path, shown_as: Path | None = None,
                       grid: bool = False) -> None:
        """As the core's; ``grid``: keep the pictures for ``finish_files`` to write
        ``grid.png`` too."""
        super().write_files_to(directory, shown_as, grid)
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
        result = self.file_result(png, key, "png", stem)
        if self.output_dir is not None and self._grid is not None and tile is not None:
            self._grid.append(tile.cpu())
        return result
