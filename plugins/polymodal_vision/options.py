"""The options of the vision plugin's encoders with their defaults, in a module that imports
no torch: the encoders check their ``options`` against them, and ``polymodal components
--json`` lists them without loading model code."""

from __future__ import annotations

from typing import Any

SMALL_CNN: dict[str, Any] = {"image_size": 64, "width": 32, "output_dim": 256, "blocks": 4,
                             "coords": False, "norm": "batch", "root": None}
# every torchvision backbone (mobilenet_v2, efficientnet_b0, resnet18 ...)
BACKBONE: dict[str, Any] = {"image_size": 224, "weights": None, "root": None}
