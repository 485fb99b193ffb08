"""Training-only augmentation: make 180 px squashed training photos look like users' photos.

Users' photos arrive at their own aspect ratio and resolution and are squashed by the app; the
training photos were squashed from ~4:3 and downscaled to 180 px. Random crops with aspect jitter,
resolution drops, flips and colour changes cover the gap. Never used at inference.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance


def augment(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    area = rng.uniform(0.55, 1.0) * w * h
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
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
