"""``box``: one box per record, regressed from the fused vector (phrase grounding: the
phrase's tokens read the image grid, and this head says where the phrase's object is).

The target is ``[x, y, w, h]`` in pixels of the record's image (RefCOCO's convention); the
head predicts the box's centre and size as fractions of the image (sigmoid), so images of
any size train together. Loss: L1 on those fractions plus the generalized IoU loss
(torchvision). Metrics: ``accuracy`` (the share of boxes with IoU >= 0.5 against the
target, the referring-expression measure) and ``mean_iou``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from polymodal.plugin import DataError, FusedDims, Task, TaskSpec, parse_options
from polymodal_vision.options import BoxOptions

if TYPE_CHECKING:
    from torchmetrics import MetricCollection


def to_corners(boxes: torch.Tensor) -> torch.Tensor:
    """[..., (cx, cy, w, h)] -> [..., (x0, y0, x1, y1)]."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


class BoxTask(Task):
    """Image (+ anything) -> one ``[x, y, w, h]`` box."""

    monitor = "accuracy"
    minimized = ("loss",)
    needs_records = True
    output_dim = 4

    Options = BoxOptions

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.options = parse_options(BoxOptions, spec.options, "task.options",
                                     f"task {spec.name!r}")

    def fit(self, targets: list[Any]) -> None:
        """Every target is four numbers with a positive width and height (checked before
        training; whether a box lies inside its image is checked as its batch is made)."""
        for index, box in enumerate(targets):
            if (not isinstance(box, list | tuple) or len(box) != 4
                    or not all(isinstance(v, int | float) for v in box)):
                raise DataError(f"record {index + 1}: {self.spec.target} {box!r} is not "
                                "[x, y, w, h]")
            if box[2] <= 0 or box[3] <= 0:
                raise DataError(f"record {index + 1}: {self.spec.target} {list(box)} has no "
                                "area (width and height must be > 0)")

    def _sizes(self, batch: dict[str, Any]) -> torch.Tensor:
        from polymodal_vision.images import image_size

        field = self.options.image
        return torch.tensor([image_size(record.get(field), f"record {i + 1}")
                             for i, record in enumerate(batch["records"])],
                            dtype=torch.float32)

    def collate_targets(self, targets: list[Any], batch: dict[str, Any]) -> Any:
        """{"boxes": [B, 4] (cx, cy, w, h) as fractions of the image, "sizes": [B, 2]}."""
        sizes = self._sizes(batch)
        boxes = []
        for record, box, (width, height) in zip(batch["records"], targets, sizes.tolist(),
                                                strict=True):
            # Batches are shuffled: the record is named by its image, not its position.
            image = record.get(self.options.image)
            where = f"the record of {Path(image).name if isinstance(image, str) else 'an image'}"
            if (not isinstance(box, list | tuple) or len(box) != 4
                    or not all(isinstance(v, int | float) for v in box)):
                raise DataError(f"{where}: {self.spec.target} {box!r} is not [x, y, w, h]")
            x, y, w, h = (float(v) for v in box)
            if w <= 0 or h <= 0 or x < -1 or y < -1 or x + w > width + 1 \
                    or y + h > height + 1:
                raise DataError(f"{where}: {self.spec.target} {list(box)} is not a box "
                                f"inside its {int(width)}x{int(height)} image")
            boxes.append([(x + w / 2) / width, (y + h / 2) / height, w / width, h / height])
        return {"boxes": torch.tensor(boxes, dtype=torch.float32), "sizes": sizes}

    def build_head(self, dims: FusedDims) -> nn.Module:
        width = int(dims.pooled or 0)
        return nn.Sequential(nn.Linear(width, self.options.hidden), nn.GELU(),
                             nn.Linear(self.options.hidden, 4), nn.Sigmoid())

    def predicted_boxes(self, outputs: torch.Tensor) -> torch.Tensor:
        """[B, 4] (cx, cy, w, h) fractions of the image."""
        return outputs.float()

    def loss(self, outputs: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        from torchvision.ops import generalized_box_iou_loss

        predicted, target = outputs.float(), batch["target"]["boxes"]
        l1 = nn.functional.l1_loss(predicted, target)
        giou = generalized_box_iou_loss(to_corners(predicted), to_corners(target),
                                        reduction="mean")
        return self.options.l1_weight * l1 + 2.0 * giou

    def metrics(self) -> MetricCollection:
        from torchmetrics import MeanMetric, MetricCollection

        return MetricCollection({"accuracy": MeanMetric(), "mean_iou": MeanMetric()})

    def update_metrics(self, metrics: MetricCollection, outputs: torch.Tensor,
                       batch: dict[str, Any]) -> None:
        from torchvision.ops import box_iou

        ious = box_iou(to_corners(self.predicted_boxes(outputs)),
                       to_corners(batch["target"]["boxes"])).diagonal()
        metrics["accuracy"].update((ious >= 0.5).float())
        metrics["mean_iou"].update(ious)

    def decode(self, outputs: torch.Tensor, batch: dict[str, Any]) -> list[dict[str, Any]]:
        sizes = self._sizes(batch).to(outputs.device)
        scale = torch.cat([sizes, sizes], dim=1)
        corners = to_corners(self.predicted_boxes(outputs)) * scale
        return [{"box": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2),
                         round(float(y1 - y0), 2)]}
                for x0, y0, x1, y1 in corners.tolist()]


class GridBoxTask(BoxTask):
    """``box-cells``: the box read off the image grid instead of one summary vector. The
    fusion gives one state per grid cell, conditioned on the rest of the record (the
    attention fusion in decoder mode with ``query: image``: the cells read the phrase);
    the head scores each cell as the one holding the box's centre (a softmax over the
    cells) and proposes a box from each (the centre's place in its cell, the size as
    fractions of the image). The loss: cross-entropy for the cell holding the target's
    centre plus the box loss of that cell's box; the prediction: the best cell's box."""

    reads = "tokens"

    def build_head(self, dims: FusedDims) -> nn.Module:
        width = int(dims.tokens or 0)
        return nn.Sequential(nn.Linear(width, self.options.hidden), nn.GELU(),
                             nn.Linear(self.options.hidden, 5))

    @staticmethod
    def _side(outputs: torch.Tensor) -> int:
        side = math.isqrt(outputs.shape[1])
        if side * side != outputs.shape[1]:
            raise DataError(f"box-cells: {outputs.shape[1]} tokens are not a square grid")
        return side

    def cell_boxes(self, outputs: torch.Tensor) -> torch.Tensor:
        """[B, T, 4] (cx, cy, w, h) fractions: each cell's box."""
        side = self._side(outputs)
        index = torch.arange(outputs.shape[1], device=outputs.device)
        rows, cols = (index // side).float(), (index % side).float()
        offsets = outputs[..., 1:3].float().sigmoid()
        centre_x = (cols + offsets[..., 0]) / side
        centre_y = (rows + offsets[..., 1]) / side
        size = outputs[..., 3:5].float().sigmoid()
        return torch.stack([centre_x, centre_y, size[..., 0], size[..., 1]], dim=-1)

    def target_cells(self, outputs: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        side = self._side(outputs)
        col = (boxes[:, 0] * side).long().clamp(0, side - 1)
        row = (boxes[:, 1] * side).long().clamp(0, side - 1)
        return row * side + col

    def predicted_boxes(self, outputs: torch.Tensor) -> torch.Tensor:
        best = outputs[..., 0].float().argmax(dim=1)
        return self.cell_boxes(outputs)[torch.arange(len(best), device=best.device), best]

    def loss(self, outputs: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        from torchvision.ops import generalized_box_iou_loss

        target = batch["target"]["boxes"]
        cells = self.target_cells(outputs, target)
        chosen = self.cell_boxes(outputs)[torch.arange(len(cells), device=cells.device), cells]
        where = nn.functional.cross_entropy(outputs[..., 0].float(), cells)
        l1 = nn.functional.l1_loss(chosen, target)
        giou = generalized_box_iou_loss(to_corners(chosen), to_corners(target),
                                        reduction="mean")
        return where + self.options.l1_weight * l1 + 2.0 * giou
