"""The options of the vision plugin's encoders with their defaults, in a module that imports
no torch: the encoders check their ``options`` against them, and ``polymodal components
--json`` lists them without loading model code."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from polymodal.plugin import Options

SMALL_CNN: dict[str, Any] = {"image_size": 64, "width": 32, "output_dim": 256, "blocks": 4,
                             "coords": False, "norm": "batch", "root": None}
# every torchvision backbone (mobilenet_v2, efficientnet_b0, resnet18 ...)
BACKBONE: dict[str, Any] = {"image_size": 224, "weights": None, "root": None}


class BoxOptions(Options):
    """Options of the ``box`` task."""

    image: str = Field(default="image", description="the input field holding the image the "
                       "boxes are in (its size turns pixels into fractions and back)")
    hidden: int = Field(default=256, ge=8, description="width of the head's hidden layer")
    l1_weight: float = Field(default=5.0, ge=0, description="weight of the L1 loss "
                             "(the GIoU loss has weight 2), as DETR weighs them")
