"""Opening images safely: a path or the bytes of an upload -> an RGB ``PIL.Image``, or a
one-line ``DataError`` that names the file (empty, truncated, not an image, an unsupported
mode, over the pixel limit)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from polymodal.plugin import DataError, RequestTooLarge

# Larger images are refused (PIL's decompression-bomb guard), not decoded: 64 megapixels.
MAX_PIXELS = 64_000_000
# Pixels of all the images in one served request together: many images just under the
# per-image limit would otherwise cost seconds and hundreds of MB each.
MAX_PIXELS_PER_REQUEST = 64_000_000
# The only decoders PIL may use: it also knows EPS/PS (which start Ghostscript where that is
# installed) and a long tail of rarely audited formats.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
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
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
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
        raise DataError(f"{name}: not an image in an accepted format "
                        f"({', '.join(ALLOWED_FORMATS)})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name}: truncated or corrupt image ({exc})") from None
    return image.convert("RGB") if image.mode != "RGB" else image


def image_size(value: Any, where: str | None = None) -> tuple[int, int]:
    """(width, height) of an image path or bytes from its header, nothing decoded (only the
    accepted formats' readers are tried); a one-line ``DataError`` naming it otherwise."""
    from PIL import Image, UnidentifiedImageError

    name = _name(value, where)
    try:
        source = io.BytesIO(bytes(value)) if isinstance(value, bytes | bytearray) else value
        with Image.open(source, formats=ALLOWED_FORMATS) as image:
            return image.size
    except (OSError, UnidentifiedImageError, TypeError, ValueError, AttributeError) as exc:
        open_image(value, where)  # says precisely what is wrong with it
        raise DataError(f"{name}: cannot read the image's size ({exc})") from None


def check_pixel_budget(values: list[Any], budget: int = MAX_PIXELS_PER_REQUEST) -> None:
    """Refuse a request whose images hold more than ``budget`` pixels in all, reading only
    their headers (nothing is decoded)."""
    from PIL import Image, UnidentifiedImageError

    total = 0
    for value in values:
        if not isinstance(value, bytes | bytearray):
            continue
        try:
            with Image.open(io.BytesIO(value), formats=ALLOWED_FORMATS) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            continue  # decoding it later gives the precise error for that image
        total += width * height
        if total > budget:
            raise RequestTooLarge(f"the images of one request hold over {budget:,} pixels; "
                                  "send fewer or smaller images per request")
