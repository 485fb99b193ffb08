"""Run the frozen lower part of the backbone once over every training image (and augmented views).

Its output maps are cached; the head and the fine-tuned top blocks then train on them in minutes
per epoch instead of hours: on this 2-core CPU that is what makes fine-tuning affordable.
Decoding goes through the app's loader.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from catsort.images import ImageError, open_image, to_model_input
from train.augment import NATURAL_ASPECT, augment

log = logging.getLogger(__name__)


def _views(path: Path, size: int, n_aug: int, seed: int, resize: str, aspect: tuple[float, float] = NATURAL_ASPECT) -> np.ndarray | None:
    try:
        img = open_image(path, size)
    except ImageError as exc:
        log.info("skip %s: %s", path, exc)
        return None
    rng = np.random.default_rng(seed)
    views = [to_model_input(img, size, resize)] + [to_model_input(augment(img, rng, aspect), size, resize) for _ in range(n_aug)]
    return np.stack(views)


def extract(
    onnx_path: Path, paths: list[Path], size: int, n_aug: int = 0, batch: int = 32, seed: int = 0, resize: str = "squash",
    aspect: tuple[float, float] = NATURAL_ASPECT,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (float16 output[n, 1+n_aug, ...] of the ONNX's single output, ok[n]) for ``paths``."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    views_per = 1 + n_aug
    outputs: list[np.ndarray] = []
    ok = np.zeros(len(paths), dtype=bool)
    with ThreadPoolExecutor(2) as pool:
        chunks = [paths[i : i + batch] for i in range(0, len(paths), batch)]

        def decode(chunk_index: int) -> list[np.ndarray | None]:
            start = chunk_index * batch
            return [_views(p, size, n_aug, seed * 1_000_003 + start + j, resize, aspect) for j, p in enumerate(chunks[chunk_index])]

        window: deque[Future] = deque(pool.submit(decode, i) for i in range(min(4, len(chunks))))
        for ci in tqdm(range(len(chunks)), desc="backbone", mininterval=10):
            decoded = window.popleft().result()
            if ci + len(window) + 1 < len(chunks):
                window.append(pool.submit(decode, ci + len(window) + 1))
            good = [d for d in decoded if d is not None]
            for j, d in enumerate(decoded):
                ok[ci * batch + j] = d is not None
            if not good:
                continue
            (out,) = session.run(None, {name: np.concatenate(good)})
            outputs.append(out.reshape(len(good), views_per, *out.shape[1:]).astype(np.float16))
    if not outputs:
        raise SystemExit(f"none of the {len(paths)} images could be read (first: {paths[0] if paths else 'no files'})")
    return np.concatenate(outputs), ok
