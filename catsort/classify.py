"""Decode files in a pool of threads and feed them to the model in batches, as a stream.

Pillow releases the GIL while decoding and resizing, and onnxruntime while running, so threads
overlap decoding with inference. At most a few batches are in flight, so memory stays flat
however many files the folder holds, and a cancel waits for no more than those few decodes.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catsort.images import ImageError, View, encode_thumbnail, fit_views, open_image, stack_views
from catsort.model import Classifier


@dataclass(frozen=True)
class Prediction:
    """One file's outcome: calibrated probabilities in the card's label order, or why it has none."""

    path: Path
    probabilities: tuple[float, ...] | None
    logits: tuple[float, ...] | None = None
    error: str | None = None
    fingerprint: tuple[int, int] | None = None
    """(size, mtime_ns) when it was decoded: a file changed since then is not moved on this verdict."""
    thumbnail: bytes | None = None
    """A small JPEG from the same decode, when asked for."""


@dataclass(frozen=True)
class _Decoded:
    pixels: tuple[np.ndarray, ...]
    fingerprint: tuple[int, int]
    thumbnail: bytes | None


def default_jobs() -> int:
    return os.cpu_count() or 1


def _decode(path: Path, views: tuple[View, ...], thumbnail_size: int | None) -> _Decoded | str:
    try:
        st = os.stat(path)
        img = open_image(path, max(v.size for v in views))
        thumb = encode_thumbnail(img, thumbnail_size) if thumbnail_size else None
        return _Decoded(fit_views(img, views), (st.st_size, st.st_mtime_ns), thumb)
    except ImageError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # a decoder bug on one odd file must not stop a 10-year photo folder
        return f"unexpected decoder error: {type(exc).__name__}: {exc}"


def classify_files(
    paths: Iterable[Path],
    classifier: Classifier,
    jobs: int | None = None,
    batch_size: int = 8,
    thumbnail_size: int | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[Prediction]:
    """Yield one :class:`Prediction` per path, in input order, until done or ``cancel`` is set."""
    jobs = jobs or default_jobs()
    views = classifier.card.views
    in_flight_limit = max(2 * batch_size, 4 * jobs)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="decode")
    pending: deque[tuple[Path, Future]] = deque()
    batch: list[tuple[Path, _Decoded]] = []

    def run_batch() -> Iterator[Prediction]:
        logits = classifier.logits(stack_views([d.pixels for _, d in batch], views))
        probs = classifier.probabilities(logits)
        for (path, d), p, z in zip(batch, probs, logits, strict=True):
            yield Prediction(path, tuple(float(v) for v in p), tuple(float(v) for v in z), None, d.fingerprint, d.thumbnail)
        batch.clear()

    def drain_one() -> Iterator[Prediction]:
        path, future = pending.popleft()
        result = future.result()
        if isinstance(result, str):
            # Flush first so predictions keep the input order.
            if batch:
                yield from run_batch()
            yield Prediction(path, None, None, result)
            return
        batch.append((path, result))
        if len(batch) >= batch_size:
            yield from run_batch()

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    try:
        for path in paths:
            if cancelled():
                return
            pending.append((path, pool.submit(_decode, path, views, thumbnail_size)))
            if len(pending) >= in_flight_limit:
                yield from drain_one()
        while pending and not cancelled():
            yield from drain_one()
        if batch and not cancelled():
            yield from run_batch()
    finally:
        # On a cancel (or the consumer closing us), decodes not yet started are dropped, not waited for.
        pool.shutdown(wait=True, cancel_futures=True)
