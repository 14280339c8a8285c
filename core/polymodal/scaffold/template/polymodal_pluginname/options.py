"""The components' options and their defaults (``inputs[i].options`` in a spec). Kept apart
from the components (no torch here): ``polymodal components`` reads them without building
anything."""

from __future__ import annotations

# The point encoder's options.
POINT = {"hidden": 32}
