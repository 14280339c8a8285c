"""The medical components' options and defaults (no torch: the listings read them)."""

from __future__ import annotations

from typing import Any

# dicom-image: the window (a preset name, "file", or None: the file's own, else the value
# range), the registered image encoder that reads the windowed image, and the optional
# resampling to a pixel spacing (mm) and crop / pad to a square field of view (mm).
DICOM_IMAGE: dict[str, Any] = {"window": None, "backbone": "small-cnn",
                               "backbone_options": {"image_size": 64},
                               "spacing_mm": None, "extent_mm": None}

# visit-sequence: the width of the GRU, the most recent visits it reads, and whether
# skewed non-negative values are read as log(1 + x) (as the numeric encoder's option).
VISIT_SEQUENCE: dict[str, Any] = {"dim": 64, "max_visits": 32, "log_skewed": True}
