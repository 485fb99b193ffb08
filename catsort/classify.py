"""Decode files and run the model on them in a pool of threads, as a stream, in input order.

Pillow releases the GIL while decoding and resizing, and onnxruntime while running, so one thread
per core, each decoding a small batch and then running the model on it, keeps every core busy.
At most a few batches are in flight, so memory stays flat however many files the folder holds,
and a cancel waits for no more than the decode each worker is in.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image

from catsort.images import ImageError, encode_thumbnail, fit_views, open_image, to_model_input
from catsort.model import Classifier, ModelCard, calibrated_probabilities


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
    """The photo fitted to the card's views: the first look's."""
    fingerprint: tuple[int, int]
    thumbnail: bytes | None
    second: Image.Image | np.ndarray | None
    """For a card with a second look: the decode itself, kept for the length of its batch so that only the
    photos the first look leaves unsure are fitted to that view; or, for a decode too big to keep
    (:data:`KEEP_DECODES_UP_TO` pixels), the photo already fitted to it."""


KEEP_DECODES_UP_TO = 1_000_000
"""Pixels of a decode a batch may keep for its second look. A drafted JPEG is under this (a 48 MP one
decodes at 0.8 MP); a 12 MP HEIC or PNG decodes whole, at 36 MB, and eight of them per worker would not
be kept for the sake of 0.7 ms each."""


class BackgroundClassifier:
    """A :class:`~catsort.model.Classifier` whose model loads in a thread while the first photos decode.

    Loading the model (sha256 check, onnxruntime session) takes a few hundred ms and releases the GIL,
    so nothing waits for it until the first batch is ready. :meth:`wait` returns the loaded classifier
    or raises its :class:`~catsort.errors.ModelError`.
    """

    def __init__(self, card: ModelCard, threads: int | None = None) -> None:
        self.card = card
        self._ready = threading.Event()
        self._classifier: Classifier | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._load, args=(threads,), name="model-load", daemon=True).start()

    def _load(self, threads: int | None) -> None:
        try:
            self._classifier = Classifier(self.card, threads)
        except BaseException as exc:  # re-raised in the thread that needs the model
            self._error = exc
        finally:
            self._ready.set()

    def wait(self) -> Classifier:
        self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self._classifier is not None
        return self._classifier

    def looked_logits(self, photos: Sequence[tuple[np.ndarray, ...]],
                      second_view: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
        return self.wait().looked_logits(photos, second_view)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return calibrated_probabilities(logits, self.card.temperature)


def default_jobs() -> int:
    return os.cpu_count() or 1


def _decode(path: Path, card: ModelCard, thumbnail_size: int | None) -> _Decoded | str:
    try:
        st = os.stat(path)
        img = open_image(path, max(v.size for v in card.decoded_views))
        thumb = encode_thumbnail(img, thumbnail_size) if thumbnail_size else None
        return _Decoded(fit_views(img, card.views), (st.st_size, st.st_mtime_ns), thumb, _for_second_look(img, card))
    except ImageError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # a decoder bug on one odd file must not stop a 10-year photo folder
        return f"unexpected decoder error: {type(exc).__name__}: {exc}"


def _classify_batch(paths: list[Path], classifier: Classifier, thumbnail_size: int | None,
                    cancel: threading.Event | None) -> list[Prediction]:
    """Decode a few files and run the model on them, all in the calling worker thread.

    Each worker does a photo's whole job, so every core is busy with one photo at a time and
    nothing waits at a hand-over between a decoding pool and an inference thread (onnxruntime's own
    threads would otherwise compete with the decoders for the same cores, and stall at every
    operator's barrier whenever one of them is descheduled).
    """
    decoded: list[_Decoded | str] = []
    for path in paths:
        if cancel is not None and cancel.is_set():
            return []
        decoded.append(_decode(path, classifier.card, thumbnail_size))
    good = [d for d in decoded if not isinstance(d, str)]
    probs = logits = None
    if good:
        logits = classifier.looked_logits([d.pixels for d in good], _second_view(classifier.card, good))
        probs = classifier.probabilities(logits)
    out, k = [], 0
    for path, d in zip(paths, decoded, strict=True):
        if isinstance(d, str):
            out.append(Prediction(path, None, None, d))
            continue
        assert probs is not None and logits is not None
        out.append(Prediction(path, tuple(float(v) for v in probs[k]), tuple(float(v) for v in logits[k]), None,
                              d.fingerprint, d.thumbnail))
        k += 1
    return out


def _for_second_look(img: Image.Image, card: ModelCard) -> Image.Image | np.ndarray | None:
    """What :attr:`_Decoded.second` keeps of a decode."""
    look = card.second_look
    if look is None:
        return None
    return img if img.width * img.height <= KEEP_DECODES_UP_TO else to_model_input(img, look.view.size, look.view.resize)


def _second_view(card: ModelCard, decoded: list[_Decoded]) -> Callable[[int], np.ndarray] | None:
    """Photo ``i`` of ``decoded`` fitted to the card's second look, made only when the model asks for it."""
    look = card.second_look
    if look is None:
        return None

    def fitted(i: int) -> np.ndarray:
        kept = decoded[i].second
        return to_model_input(kept, look.view.size, look.view.resize) if isinstance(kept, Image.Image) else kept

    return fitted


def classify_files(
    paths: Iterable[Path],
    classifier: Classifier,
    jobs: int | None = None,
    batch_size: int = 8,
    thumbnail_size: int | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[Prediction]:
    """Yield one :class:`Prediction` per path, in input order, until done or ``cancel`` is set.

    ``jobs`` worker threads each take ``batch_size`` files, decode them and run the model on them
    (give the classifier one onnxruntime thread: the workers are the parallelism). A few batches
    more than there are workers are in flight, so memory stays flat and the workers never wait.
    """
    jobs = jobs or default_jobs()
    in_flight_limit = jobs + 2
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="classify")
    pending: deque[Future] = deque()
    it = iter(paths)

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    try:
        while True:
            while len(pending) < in_flight_limit and not cancelled():
                batch = list(islice(it, batch_size))
                if not batch:
                    break
                pending.append(pool.submit(_classify_batch, batch, classifier, thumbnail_size, cancel))
            if not pending or cancelled():
                return
            for prediction in pending.popleft().result():
                if cancelled():
                    return
                yield prediction
    finally:
        # On a cancel (or the consumer closing us), batches not yet started are dropped, not waited for.
        pool.shutdown(wait=True, cancel_futures=True)
