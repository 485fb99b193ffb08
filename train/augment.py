"""Training-only augmentation: make 180 px squashed training photos look like users' photos.

Users' photos arrive at their own aspect ratio and resolution and are squashed by the app; the
training photos were squashed from ~4:3 and downscaled to 180 px. Random crops with aspect jitter,
resolution drops, flips and colour changes cover the gap. Never used at inference.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance

SQUASHED_ASPECT = (0.6, 1 / 0.6)
"""Crop aspect range for the squashed 180 px photos. Squashing a crop of width/height ``a`` stretches
the picture by ``1 / a``: a squashed 4:3 photo cropped at 0.6 looks like a squashed portrait photo, at
1.67 like a squashed panorama. Users' photos come at every aspect ratio and the app squashes them all."""
NATURAL_ASPECT = (3 / 4, 4 / 3)
"""Crop aspect range for photos at their own aspect ratio (realtrain): squashing already distorts them as the app does."""


def augment(img: Image.Image, rng: np.random.Generator, aspect_range: tuple[float, float] = NATURAL_ASPECT) -> Image.Image:
    w, h = img.size
    area = rng.uniform(0.55, 1.0) * w * h
    aspect = np.exp(rng.uniform(np.log(aspect_range[0]), np.log(aspect_range[1])))
    cw = int(min(w, round(np.sqrt(area * aspect))))
    ch = int(min(h, round(np.sqrt(area / aspect))))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    out = img.crop((x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.5:
        short = int(rng.integers(56, max(57, min(cw, ch))))
        scale = short / min(cw, ch)
        out = out.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.Resampling.BILINEAR)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        out = enhancer(out).enhance(float(rng.uniform(0.75, 1.25)))
    return out
