"""Open one image file and turn it into the model's inputs: the single definition of preprocessing.

``train/`` imports this module to build its arrays, so a photo is decoded, rotated, flattened
onto white and fitted to a square the same way when the model learns and when the app runs it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
"""Files whose name ends in one of these (any case) are treated as photos; everything else is ignored."""

MAX_PIXELS = 2 * (Image.MAX_IMAGE_PIXELS or 89_478_485)
"""The most pixels an image may decode at (Pillow's own refusal limit, 178 MP): the decompression-bomb
guard, checked by :func:`_check_size` on the size a JPEG decodes at after ``draft``, and on the size
any other format declares, before a pixel is decoded."""

# Pillow's own guard judges the size a file declares when it is opened, before a JPEG's ``draft`` can
# bring a 200 MP phone photo down to 1/8 of that, and warns on stderr (from any thread) about every
# image or crop over half the limit; this module, which opens every image catsort/ and train/ read, checks
# instead (bench/ opens its own photos with Pillow, and with this imported they go unguarded).
Image.MAX_IMAGE_PIXELS = None

DRAFTABLE = frozenset({"JPEG", "MPO"})
"""Formats decoded with DCT scaling. MPO is the JPEG of many phones and cameras with a second picture
(depth, a preview) appended; its first picture is an ordinary JPEG, decoded as one."""

JPEG_MAX_PIXELS_PER_BYTE = 640
"""More pixels per byte of file than any JPEG can hold: its Huffman coding spends at least a bit on every
8 x 8 block of every channel (at most 512 pixels a byte, for grey, progressive; a flat photo saved optimised
measures 256, in colour 170; the data set's 34,895 JPEGs at most 27). A file declaring more lost its data,
or never had it: the decoder would not say so, but fill the picture's missing part with grey, to be
classified and thumbnailed as if it were a photo. Arithmetic-coded JPEGs are not held to it: a flat one
spends less than a bit a block (a grey 12 MP picture takes 125 bytes), and Pillow decodes them."""

_ARITHMETIC_FRAMES = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
"""The start-of-frame markers (SOF9-11, SOF13-15) of arithmetic-coded JPEG."""

SHRINK_ABOVE = 50_000_000
"""Images decoding to more pixels than this (few photos are: 61 and 102 MP camera TIFFs; no training photo)
are box-shrunk before their mode is converted (see :func:`_shrink_factor`): converting a 178 MP RGBA
PNG to RGB at full size took 4.1 GB, in five full-size copies."""

_SMALLEST_SHRUNK_SIDE = 512
"""A shrunk image keeps at least this many pixels on its shorter side: the grid's thumbnails (up to
256 px, THUMB at twice the pixel ratio) come from the decode made for the model, which asks only for
the model's view sizes."""

_STRIP_PIXELS = 1 << 22
"""Pixels of a huge image shrunk at a time, so the copies a mode conversion makes stay this small."""


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
    So a JPEG is judged by the size it decodes at, any other format by the size it declares; an image
    still over :data:`SHRINK_ABOVE` pixels is shrunk, to at least twice ``min_side`` and 512 px, before anything else.
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
            return _decode(path, min_side, size)
        except UnidentifiedImageError:
            if not register_heif():  # a HEIC photo under another name: try again once HEIF is known
                raise
            return _decode(path, min_side, size)
    except Image.DecompressionBombError:  # Pillow's own guard, should anything have set its limit again
        raise ImageError(_too_large()) from None
    except UnidentifiedImageError:
        raise ImageError("not a readable image (unknown or unsupported format)") from None
    except OSError as exc:
        if exc.errno is not None:  # the system's error (a folder now, a failing disk), not the decoder's
            raise ImageError(f"cannot read file: {exc.strerror or exc}") from None
        raise ImageError(f"corrupt image: {_decoder_reason(exc)}") from None
    except (SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"corrupt image: {_decoder_reason(exc)}") from None
    except MemoryError:
        raise ImageError("image too large to decode in memory") from None


def _decoder_reason(exc: Exception) -> str:
    """Pillow's reason, with its several wordings of a file cut short ("Truncated File Read", ...) made one."""
    reason = str(exc).strip() or type(exc).__name__
    return "image data is truncated (file cut short)" if "truncated" in reason.lower() else reason


def _decode(path: Path, min_side: int, file_bytes: int) -> Image.Image:
    with Image.open(path) as img:
        if img.format in DRAFTABLE:
            _check_jpeg_holds_its_size(img, file_bytes)
            img.draft(None, (min_side, min_side))
        _check_size(img)
        img.load()
        factor = _shrink_factor(img.size, min_side)
        if factor == 1:
            return _to_rgb(ImageOps.exif_transpose(img))
        orientation = img.getexif().get(ExifTags.Base.Orientation)
        small = _shrink(img, factor)
    if orientation:  # turned once shrunk: turning the huge image first copied it whole
        small.getexif()[ExifTags.Base.Orientation] = orientation
        ImageOps.exif_transpose(small, in_place=True)
    return _to_rgb(small)


def _check_jpeg_holds_its_size(img: Image.Image, file_bytes: int) -> None:
    """Refuse, as corrupt, a Huffman-coded JPEG too small for the size it declares (:data:`JPEG_MAX_PIXELS_PER_BYTE`)."""
    if img.width * img.height > JPEG_MAX_PIXELS_PER_BYTE * file_bytes and _frame_marker(img) not in _ARITHMETIC_FRAMES:
        raise ImageError(f"corrupt image: it declares {img.width} x {img.height} pixels but holds only {file_bytes:,} bytes")


def _frame_marker(img: Image.Image) -> int | None:
    """The second byte of a JPEG's start-of-frame marker (0xC0 baseline, 0xC2 progressive, ...), or None if the
    segments before it cannot be walked. Pillow reads the marker but keeps only whether it is progressive;
    this is asked only of the rare file the pixels-per-byte rule would refuse."""
    fp = img.fp
    if fp is None:
        return None
    at = fp.tell()
    try:
        fp.seek(2)  # past the start-of-image marker
        while (head := fp.read(4)) and len(head) == 4 and head[0] == 0xFF:
            if 0xC0 <= head[1] <= 0xCF and head[1] not in (0xC4, 0xC8, 0xCC):  # DHT, JPG and DAC are no frames
                return head[1]
            fp.seek(int.from_bytes(head[2:], "big") - 2, 1)
        return None
    finally:
        fp.seek(at)


def _check_size(img: Image.Image) -> None:
    """Refuse an image that would decode to more than :data:`MAX_PIXELS`, before it is decoded."""
    if img.width * img.height > MAX_PIXELS:
        raise ImageError(_too_large())


def _too_large() -> str:
    return f"image is larger than the {MAX_PIXELS // 1_000_000} megapixel safety limit"


def _shrink_factor(size: tuple[int, int], min_side: int) -> int:
    """How many times to shrink a decoded image of ``size`` before converting its mode; 1 for not at all.

    Only images over :data:`SHRINK_ABOVE` pixels are shrunk (so every ordinary photo's pixels are
    exactly as before), and never below twice ``min_side`` on the shorter side: the model's resize
    (and the preview, which asks for its own ``min_side``) still has more pixels than it uses.
    """
    if size[0] * size[1] <= SHRINK_ABOVE:
        return 1
    return max(1, min(size) // max(2 * min_side, _SMALLEST_SHRUNK_SIDE))


def _shrink(img: Image.Image, factor: int) -> Image.Image:
    """``img`` box-averaged ``factor`` times (``Image.reduce``), a strip of rows at a time.

    Each strip is a whole number of ``factor`` rows high, so the result is that of one reduce of the
    whole image; but the conversions a reduce needs first (and the premultiplied copy Pillow makes of
    RGBA) are made of a strip, not of the whole 100+ MP image.
    """
    rows = factor * max(1, _STRIP_PIXELS // (img.width * factor))
    strips = [_reduce_strip(img.crop((0, top, img.width, min(top + rows, img.height))), factor)
              for top in range(0, img.height, rows)]
    out = Image.new(strips[0].mode, (strips[0].width, sum(s.height for s in strips)))
    top = 0
    for strip in strips:
        out.paste(strip, (0, top))
        top += strip.height
    return out


def _reduce_strip(strip: Image.Image, factor: int) -> Image.Image:
    """One strip reduced in a mode that averages correctly.

    ``Image.reduce`` refuses palette, 1-bit and 16-bit pixels, and averaging would turn a colour key
    (a PNG's tRNS) into colours that match no key; such strips are converted first, as
    :func:`_to_rgb` would have converted the whole image.
    """
    if strip.mode.startswith("I;16"):
        return strip.convert("I").reduce(factor).convert("I;16")  # still 16-bit: _to_rgb scales by the mode
    if strip.mode == "1":
        strip = strip.convert("L")
    elif strip.mode == "PA" or "transparency" in strip.info:
        strip = strip.convert("RGBA")
    elif strip.mode == "P":
        strip = strip.convert("RGB")
    return strip.reduce(factor)


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
