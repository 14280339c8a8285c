"""Opening images safely: a path or the bytes of an upload -> an RGB ``PIL.Image``, or a
one-line ``DataError`` that names the file (empty, truncated, not an image, an unsupported
mode, over the pixel limit)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from polymodal.errors import DataError

# Larger images are refused (PIL's decompression-bomb guard), not decoded: 64 megapixels.
MAX_PIXELS = 64_000_000
# Modes converted to RGB; others (CMYK, 16/32-bit, float) are refused: their colours or
# ranges need a decision the user should make (e.g. a window for 16-bit medical images).
CONVERTIBLE_MODES = {"RGB", "RGBA", "L", "LA", "P", "1"}


def _name(value: Any, where: str | None) -> str:
    if where:
        return where
    return str(value) if isinstance(value, str | Path) else "uploaded image"


def open_image(value: Any, where: str | None = None) -> Any:
    """``value``: a file path, bytes, or an already opened PIL image."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(value, Image.Image):
        return value.convert("RGB") if value.mode != "RGB" else value
    name = _name(value, where)
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif isinstance(value, str | Path):
        path = Path(value)
        if not path.is_file():
            raise DataError(f"{name}: image file not found")
        data = path.read_bytes()
    else:
        raise DataError(f"{name}: expected an image path or bytes, got "
                        f"{type(value).__name__}")
    if not data:
        raise DataError(f"{name}: empty file (0 bytes)")
    # Our own guard below reads the size from the header before anything is decoded, so
    # PIL's (which raises at twice its limit, with another message) is not needed.
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DataError(f"{name}: {width}x{height} pixels is over the limit of "
                                f"{MAX_PIXELS:,} (decompression-bomb guard)")
            if image.mode not in CONVERTIBLE_MODES:
                raise DataError(f"{name}: unsupported image mode {image.mode} (convert it to "
                                "8-bit RGB or grayscale first)")
            image.load()
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{name}: too many pixels (decompression-bomb guard, limit "
                        f"{MAX_PIXELS:,})") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not an image PIL can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name}: truncated or corrupt image ({exc})") from None
    return image.convert("RGB") if image.mode != "RGB" else image
