"""Open one image file and turn it into the model's inputs: the single definition of preprocessing.

``train/`` imports this module to build its arrays, so a photo is decoded, rotated, flattened
onto white and fitted to a square the same way when the model learns and when the app runs it.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
"""Files whose name ends in one of these (any case) are treated as photos; everything else is ignored."""

MAX_PIXELS = 2 * (Image.MAX_IMAGE_PIXELS or 89_478_485)
"""Pillow refuses images declaring more pixels than this before decoding them (decompression-bomb guard)."""


class ImageError(Exception):
    """A file that cannot become model input; ``str()`` is a one-line reason for the user."""


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


HEIF_SUFFIXES = frozenset({".heic", ".heif"})
_heif_lock = threading.Lock()
_heif_ready = False


def register_heif() -> bool:
    """Teach Pillow HEIC/HEIF (pi_heif) on first need, not at start-up; False if it was registered already."""
    global _heif_ready
    with _heif_lock:
        if _heif_ready:
            return False
        from pi_heif import register_heif_opener

        register_heif_opener()
        _heif_ready = True
        return True


def open_image(path: Path, min_side: int) -> Image.Image:
    """Decode ``path`` as an upright RGB image whose shorter side is at least ``min_side`` when possible.

    JPEGs are decoded with DCT scaling (``draft``) straight to near ``min_side``: on the bench's
    noisy 12 MP photos that costs 123 ms instead of 210 ms for a full decode, before any resize.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from None
    if size == 0:
        raise ImageError("empty file (0 bytes)")
    if path.suffix.lower() in HEIF_SUFFIXES:
        register_heif()
    try:
        try:
            return _decode(path, min_side)
        except UnidentifiedImageError:
            if not register_heif():  # a HEIC photo under another name: try again once HEIF is known
                raise
            return _decode(path, min_side)
    except Image.DecompressionBombError:
        raise ImageError(f"image is larger than the {MAX_PIXELS // 1_000_000} megapixel safety limit") from None
    except UnidentifiedImageError:
        raise ImageError("not a readable image (unknown or unsupported format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        if "truncated" in reason:
            reason = "image data is truncated (file cut short)"
        raise ImageError(f"corrupt image: {reason}") from None
    except MemoryError:
        raise ImageError("image too large to decode in memory") from None


def _decode(path: Path, min_side: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft(None, (min_side, min_side))
            img.load()
            upright = ImageOps.exif_transpose(img)
            return _to_rgb(upright)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: high bit depths scaled down, transparency flattened onto white."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode in ("L", "RGB") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


RESIZE_MODES = ("squash", "centre")
"""How a photo is fitted to the model's square input.

``squash``: the whole picture, aspect ratio lost, as the training photos were made. ``centre``: the
largest centred square, undistorted, as ImageNet classifiers are shown photos; their own verdict
on a photo is sharpest that way.
"""


@dataclass(frozen=True)
class View:
    """One model input: the photo fitted to ``size`` x ``size`` pixels by ``resize``, fed as ONNX input ``name``."""

    name: str
    size: int
    resize: str


def to_model_input(img: Image.Image, size: int, resize: str = "squash") -> np.ndarray:
    """``uint8[size, size, 3]`` of ``img`` fitted by ``resize`` (one of :data:`RESIZE_MODES`)."""
    if resize == "centre":
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
    elif resize != "squash":
        raise ValueError(f"unknown resize mode {resize!r}")
    resized = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(resized, dtype=np.uint8)


def load_image(path: Path, size: int) -> np.ndarray:
    """The squashed model input for one file, ``uint8[size, size, 3]``, or :class:`ImageError`."""
    return to_model_input(open_image(path, size), size)


def load_views(path: Path, views: Sequence[View]) -> tuple[np.ndarray, ...]:
    """One decode of ``path``, fitted once per view, in order; or :class:`ImageError`."""
    return fit_views(open_image(path, max(v.size for v in views)), views)


def fit_views(img: Image.Image, views: Sequence[View]) -> tuple[np.ndarray, ...]:
    """One decoded image fitted once per view, in order."""
    return tuple(to_model_input(img, v.size, v.resize) for v in views)


def encode_thumbnail(img: Image.Image, size: int) -> bytes:
    """A small JPEG of an already decoded image, at most ``size`` px on its long side (a few KB).

    Made from the decode the model already paid for, so a review window never decodes a
    12 MP photo twice; encoded, so 20,000 of them fit in a few tens of MB.
    """
    small = img.copy()
    small.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=82)
    return out.getvalue()


def stack_views(photos: Sequence[tuple[np.ndarray, ...]], views: Sequence[View]) -> dict[str, np.ndarray]:
    """Photos' :func:`load_views` results -> the model's inputs: input name -> ``uint8[n, size, size, 3]``."""
    return {v.name: np.stack([photo[i] for photo in photos]) for i, v in enumerate(views)}
