"""Decoding any image file or byte string into an 8-bit RGB PIL image.

Conversions (all to RGB, 8 bits per channel):
- grey (L), bilevel (1), CMYK, YCbCr, LAB, HSV: PIL's own conversion;
- 16/32-bit grey (I;16, I): scaled by 1/257 (65535 -> 255), then grey to RGB;
- float grey (F): clipped to [0, 255];
- anything with transparency (RGBA, LA, PA, P with a transparent colour): composited on a
  white background, so transparent regions read as white paper rather than arbitrary colour;
- EXIF orientation is applied, as photo viewers do.

:func:`load_photo` decodes the same way but keeps what a repaired photo must keep: grey stays
grey (``L``, 8 bits) and transparency stays (``LA`` or ``RGBA``); :func:`photo_rgb` is the RGB
image a network sees for it (transparent areas on white).

:data:`MAX_PIXELS` is the project's one pixel cap (training data and the app): with
``max_pixels`` set, an image above it is refused from the size in its header, before any
pixel is decoded.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
MAX_PIXELS = 40_000_000  # the largest image trained on or repaired in the app


class UnreadableImageError(ValueError):
    """A file or byte string that is empty, truncated, corrupt or not an image."""


class OversizedImageError(UnreadableImageError):
    """An image with more pixels than allowed (found from its header, nothing decoded)."""


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in _WIDE_GREY:
        grey = np.clip(np.asarray(im, dtype=np.float64) / 257.0, 0, 255)
        im = Image.fromarray(np.round(grey).astype(np.uint8))
    elif im.mode == "F":
        im = Image.fromarray(np.clip(np.asarray(im), 0, 255).astype(np.uint8))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _grey_or_alpha(im: Image.Image) -> Image.Image:
    """``im`` as ``L``, ``LA``, ``RGB`` or ``RGBA``: grey stays grey (wide grey scaled to 8
    bits), transparency stays."""
    if im.mode in _WIDE_GREY or im.mode == "F":
        return _to_rgb(im).convert("L")  # the same scaling as load_rgb, then one channel
    if im.mode in ("L", "1"):
        return im.convert("L")
    if im.mode in ("LA", "La"):
        return im.convert("LA")
    if im.mode == "P" and "transparency" in im.info:
        return im.convert("RGBA")
    if im.mode in ("RGBA", "PA", "RGBa"):
        return im.convert("RGBA")
    return im if im.mode == "RGB" else im.convert("RGB")


def photo_rgb(photo: Image.Image) -> Image.Image:
    """The RGB image a network sees for a :func:`load_photo` result: grey as three equal
    channels, transparent areas on white."""
    return _to_rgb(photo)


def load_photo(
    source: str | Path | bytes | memoryview, name: str | None = None, max_pixels: int | None = None
) -> Image.Image:
    """Decode ``source`` like :func:`load_rgb`, but as ``L`` (grey), ``LA`` (grey with
    alpha), ``RGBA`` (colour with alpha) or ``RGB``: what a repaired photo keeps."""
    return _decode(source, name, max_pixels, _grey_or_alpha)


def load_rgb(
    source: str | Path | bytes | memoryview, name: str | None = None, max_pixels: int | None = None
) -> Image.Image:
    """Decode ``source`` (a path or the encoded bytes) fully into an RGB image.

    Raises:
        UnreadableImageError: naming ``name`` (or the path) when decoding fails for any reason.
        OversizedImageError: the header says more than ``max_pixels`` pixels.
    """
    return _decode(source, name, max_pixels, _to_rgb)


def _decode(
    source: str | Path | bytes | memoryview,
    name: str | None,
    max_pixels: int | None,
    convert: Callable[[Image.Image], Image.Image],
) -> Image.Image:
    label = name or (str(source) if isinstance(source, str | Path) else "<bytes>")
    fp = io.BytesIO(source) if isinstance(source, bytes | memoryview) else source
    try:
        im = Image.open(fp)
        try:
            if max_pixels is not None and im.width * im.height > max_pixels:
                raise OversizedImageError(
                    f"image {label} is {im.width}x{im.height} = {im.width * im.height:,} pixels, "
                    f"more than the {max_pixels:,} allowed"
                )
            im.load()  # decodes everything now (truncation shows here) and closes the file
        except Exception:
            im.close()
            raise
        ImageOps.exif_transpose(im, in_place=True)
        return convert(im)
    except OversizedImageError:
        raise
    # PIL raises many types on bad input (OSError, SyntaxError, struct.error, EOFError, ...).
    except Exception as err:
        raise UnreadableImageError(f"cannot decode image {label}: {err}") from err
