"""Strict JSON for every answer polymodal prints or serves: no NaN or Infinity, which are not
JSON and break every strict parser downstream (a non-finite number becomes null)."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(obj: Any) -> Any:
    """``obj`` with NaN and infinite floats replaced by None: JSON has no such numbers, and
    ``NaN`` in output breaks every strict JSON parser downstream."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def to_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON (no NaN/Infinity); values JSON lacks are written as strings."""
    return json.dumps(finite(obj), indent=indent, default=str, allow_nan=False)
