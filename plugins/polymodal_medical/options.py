"""The medical components' options and defaults (no torch: the listings read them)."""

from __future__ import annotations

from typing import Any

# dicom-image: the window (a preset name, "file", or None: the file's own, else the value
# range) and the registered image encoder that reads the windowed image.
DICOM_IMAGE: dict[str, Any] = {"window": None, "backbone": "small-cnn",
                               "backbone_options": {"image_size": 64}}
