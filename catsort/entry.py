"""Where every way of starting catsort begins: the console and gui scripts, ``python -m catsort``, the bundle.

Until a program is ready to stop cleanly, Ctrl-C (or a shutdown's SIGTERM, a closed terminal's SIGHUP)
ends it at once with one line. It has touched no file yet, and Python's own handling would print a
traceback of whichever import it cut short, or inside PySide6's an ImportError that hides the Ctrl-C.
The headless run (:func:`catsort.cli.main`) and the window (:func:`catsort.gui.app.open_window`) each
take the signals over once they can stop the way their users expect. This module imports nothing of the
app, so that the window it guards opens as early as Python can run it.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

STOP_SIGNAL_NAMES = ("SIGINT", "SIGTERM", "SIGHUP")
"""Ctrl-C, a shutdown or ``kill``, a closed terminal; Windows has only the first."""
EXIT_INTERRUPTED = 130
STARTING_LINE = "catsort: interrupted while starting; nothing was changed"


def stop_signals() -> list[signal.Signals]:
    """The signals that stop catsort, those this platform has."""
    return [getattr(signal, name) for name in STOP_SIGNAL_NAMES if hasattr(signal, name)]


def _stop_while_starting(signum: int, frame: FrameType | None) -> None:
    os.write(2, f"{STARTING_LINE}\n".encode())
    os._exit(EXIT_INTERRUPTED)  # nothing to tidy: no file is open, no thread does work yet


def stop_quietly_while_starting() -> None:
    """Ctrl-C, SIGTERM and SIGHUP end the process with :data:`STARTING_LINE` until someone sets their own
    handlers; one a parent set to be ignored (``nohup``'s SIGHUP) stays ignored."""
    for signum in stop_signals():
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop_while_starting)


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

