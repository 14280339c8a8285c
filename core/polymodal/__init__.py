"""polymodal: a plugin-based suite for multimodal deep learning.

Importing this package imports no torch; ``polymodal.load`` does, when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polymodal.errors import PolymodalError
from polymodal.hookspecs import hookimpl

if TYPE_CHECKING:
    from polymodal.predictor import ModelPredictor

__version__ = "0.1.0"
__all__ = ["PolymodalError", "hookimpl", "load", "__version__"]


def load(model_dir: Any, device: str | None = None,
         precision: str = "fp32") -> ModelPredictor:
    """Load a trained model directory; ``.predict(records)`` and ``.evaluate(records)``.
    ``precision``: fp32 (exact, default), or auto/bf16/fp16 autocast (faster)."""
    from polymodal.predictor import load as _load

    return _load(model_dir, device=device, precision=precision)
