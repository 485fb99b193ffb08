"""Run a core iterator (predict, apply, undo) in a QThread and report to the window by signals.

The iterator is created, iterated and closed in the worker thread; the window only ever sees
batches of its items (every ~32 items or ~50 ms, so the event loop is not flooded and results
still appear live) and one ``finished``. ``cancel()`` only sets a flag the core polls: the
core decides where it is safe to stop, never the window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal, Slot

from catsort.errors import CatsortError

Job = Callable[[threading.Event], Iterator[object]]
"""A function that, given the cancel flag, returns the iterator to run."""

BATCH_ITEMS = 32
BATCH_SECONDS = 0.05


class Worker(QObject):
    batch = Signal(object)
    """A list of the iterator's items (object, not list: passed by reference, never converted)."""
    failed = Signal(str, str)
    """(the error's class name, its one-line message)"""
    finished = Signal(bool)
    """True if the job ran to its end, False if it was cancelled or failed."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        items: list[object] = []
        last = time.monotonic()
        completed = False
        iterator: Iterator[object] | None = None
        try:
            iterator = self._job(self._cancel)
            for item in iterator:
                items.append(item)
                now = time.monotonic()
                if len(items) >= BATCH_ITEMS or now - last >= BATCH_SECONDS:
                    self.batch.emit(items)
                    items, last = [], now
            # No break on cancel here: the core polls the flag and stops where it is safe (an apply
            # finishes its file and ends its journal), and what it yields after that is still news.
            completed = not self._cancel.is_set()
        except CatsortError as exc:
            self.failed.emit(type(exc).__name__, str(exc))
        except Exception as exc:  # the core's contract is CatsortError; anything else is a bug, shown not swallowed
            self.failed.emit(type(exc).__name__, f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            try:
                if iterator is not None and hasattr(iterator, "close"):
                    iterator.close()
            except Exception as exc:  # closing ends a journal; if even that fails, the user hears of it
                self.failed.emit(type(exc).__name__, str(exc))
                completed = False
            if items:
                self.batch.emit(items)
            self.finished.emit(completed)


def start(parent: QObject, job: Job, on_batch: Callable[[list], None], on_failed: Callable[[str, str], None],
          on_finished: Callable[[bool], None]) -> tuple[QThread, Worker]:
    """Start ``job`` in a new thread owned by ``parent``; the worker deletes itself when it ends.

    A parent must not be deleted while the job runs (Qt aborts on a running QThread's destruction):
    the window waits for its job before it closes or the application quits.
    """
    thread = QThread(parent)
    worker = Worker(job)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.batch.connect(on_batch)
    worker.failed.connect(on_failed)
    worker.finished.connect(on_finished)
    worker.finished.connect(thread.quit)
    thread.finished.connect(worker.deleteLater)
    # Not thread.deleteLater here: ``finished`` is emitted while the thread is still ending, and a
    # deletion that wins that race aborts the process. The owner deletes it once isFinished().
    thread.start()
    return thread, worker
