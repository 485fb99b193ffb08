"""Decode files in a pool of threads and feed them to the model in batches, as a stream.

Pillow releases the GIL while decoding and resizing, and onnxruntime while running, so threads
overlap decoding with inference. At most a few batches are in flight, so memory stays flat
however many files the folder holds.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catsort.images import ImageError, View, load_views, stack_views
from catsort.model import Classifier


@dataclass(frozen=True)
class Prediction:
    """One file's outcome: calibrated probabilities in the card's label order, or why it has none."""

    path: Path
    probabilities: tuple[float, ...] | None
    logits: tuple[float, ...] | None = None
    error: str | None = None


def default_jobs() -> int:
    return os.cpu_count() or 1


def _decode(path: Path, views: tuple[View, ...]) -> tuple[np.ndarray, ...] | str:
    try:
        return load_views(path, views)
    except ImageError as exc:
        return str(exc)
    except Exception as exc:  # a decoder bug on one odd file must not stop a 10-year photo folder
        return f"unexpected decoder error: {type(exc).__name__}: {exc}"


def classify_files(
    paths: Iterable[Path], classifier: Classifier, jobs: int | None = None, batch_size: int = 8
) -> Iterator[Prediction]:
    """Yield one :class:`Prediction` per path, in input order."""
    jobs = jobs or default_jobs()
    views = classifier.card.views
    in_flight_limit = max(2 * batch_size, 4 * jobs)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="decode") as pool:
        pending: deque[tuple[Path, Future]] = deque()
        batch: list[tuple[Path, tuple[np.ndarray, ...]]] = []

        def run_batch() -> Iterator[Prediction]:
            logits = classifier.logits(stack_views([pixels for _, pixels in batch], views))
            probs = classifier.probabilities(logits)
            for (path, _), p, z in zip(batch, probs, logits):
                yield Prediction(path, tuple(float(v) for v in p), tuple(float(v) for v in z))
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

        for path in paths:
            pending.append((path, pool.submit(_decode, path, views)))
            if len(pending) >= in_flight_limit:
                yield from drain_one()
        while pending:
            yield from drain_one()
        if batch:
            yield from run_batch()
