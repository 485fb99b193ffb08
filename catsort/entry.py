"""Where every way of starting catsort begins: the console and gui scripts, ``python -m catsort``, the bundle.

Until a program is ready to stop cleanly, Ctrl-C (or a shutdown's SIGTERM, a closed terminal's SIGHUP)
ends it at once with one line. It has touched no file yet, and Python's own handling would print a
traceback of whichever import it cut short, or inside PySide6's an ImportError that hides the Ctrl-C.
The headless run (:func:`catsort.cli.main`) and the window (:func:`catsort.gui.app.open_window`) each
take the signals over once they can stop the way their users expect. This module imports nothing of the
app, so that the window it guards opens as early as Python can run it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNAL_NAMES = ("SIGINT", "SIGTERM", "SIGHUP")
"""Ctrl-C, a shutdown or ``kill``, a closed terminal; Windows has only the first."""
EXIT_INTERRUPTED = 130
STARTING_LINE = "catsort: interrupted while starting; nothing was changed"


def stop_signals() -> list[signal.Signals]:
    """The signals that stop catsort, those this platform has."""
    return [getattr(signal, name) for name in STOP_SIGNAL_NAMES if hasattr(signal, name)]


def ending_with(line: str) -> Callable[[int, FrameType | None], None]:
    """A stop signal's handler that ends the process at once with ``line`` and exit 130: for times when nothing is
    left to tidy (starting, before any file is open; or the work done, and only its report left to say)."""
    def stop(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):  # no stderr (a closed terminal): the exit code still says it
            os.write(2, f"{line}\n".encode(errors="surrogateescape"))
        os._exit(EXIT_INTERRUPTED)

    return stop


Handler = Callable[[int, FrameType | None], Any] | int | None
"""What :func:`signal.getsignal` gives: a function, ``SIG_DFL``/``SIG_IGN``, or None (set outside Python)."""


def handle_stop_signals(handler: Callable[[int, FrameType | None], Any]) -> dict[int, Handler]:
    """Let ``handler`` take every stop signal, but for one a parent set to be ignored (``nohup``'s SIGHUP),
    which stays ignored, and one set outside Python, which could not be given back. Returns the handlers
    to give back with :func:`restore_handlers`, the ignored ones included (a run may ignore them all while
    it reports)."""
    previous = {signum: was for signum in stop_signals() if (was := signal.getsignal(signum)) is not None}
    for signum, was in previous.items():
        if was is not signal.SIG_IGN:
            signal.signal(signum, handler)
    return previous


def restore_handlers(previous: dict[int, Handler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def stop_quietly_while_starting() -> None:
    """Ctrl-C, SIGTERM and SIGHUP end the process with :data:`STARTING_LINE` until someone sets their own
    handlers."""
    handle_stop_signals(ending_with(STARTING_LINE))


def cli() -> int:
    """``catsort``: the terminal program, or the window without ``--headless``."""
    stop_quietly_while_starting()
    from catsort.cli import main

    return main()


def gui() -> int:
    """``catsort-gui``: the window."""
    stop_quietly_while_starting()
    from catsort.gui.app import main

    return main()

