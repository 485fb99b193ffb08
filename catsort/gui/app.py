"""Start the window, or say in one line why it cannot start.

Importable without PySide6: plain ``catsort`` on a machine without the ``[gui]`` extra, without a
display (ssh, a server) or without the system libraries Qt's xcb plugin needs gets one line and
exit code 2, never Qt's own abort.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from catsort.entry import EXIT_INTERRUPTED, handle_stop_signals, restore_handlers

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QWidget

EXIT_UNUSABLE = 2
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
    "libEGL.so.1": "libegl1",
}
"""The libraries Qt's xcb plugin loads (Debian package names): without them Qt aborts the process."""


def why_no_window() -> str | None:
    """One line saying why the window cannot open here, or None if it can."""
    if importlib.util.find_spec("PySide6") is None:
        return ("catsort: the window needs PySide6, which is not installed: pip install 'catsort[gui]'; "
                "or sort from the terminal: catsort --headless PATH")
    if not sys.platform.startswith("linux"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb") and not platform.startswith("wayland"):
        return None  # offscreen, vnc, ...: the user chose; Qt reports its own problems
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return ("catsort: no display to open the window on (over ssh, or on a server?); "
                "sort from the terminal: catsort --headless PATH")
    if platform.startswith("wayland") or (not platform and os.environ.get("WAYLAND_DISPLAY")):
        if not _wayland_answers():
            return _unreachable(f"the Wayland display {os.environ.get('WAYLAND_DISPLAY') or 'wayland-0'}", "is the session still running?")
        return None
    missing = []
    for library, package in XCB_LIBRARIES.items():
        try:
            ctypes.CDLL(library)
        except OSError:
            missing.append(package)
    if missing:
        return (f"catsort: the window needs system libraries that are missing: sudo apt install {' '.join(missing)}; "
                "or sort from the terminal: catsort --headless PATH")
    display = os.environ.get("DISPLAY", "")
    if not display:
        return _unreachable("an X display", "DISPLAY is not set")
    if _x_answers(display) is False:
        return _unreachable(f"the display {display}", "a stale DISPLAY from ssh, or sudo without the user's Xauthority?")
    return None


def _unreachable(what: str, hint: str) -> str:
    return f"catsort: cannot open the window: {what} does not answer ({hint}); sort from the terminal: catsort --headless PATH"


def _x_answers(display: str) -> bool | None:
    """Whether an X server accepts a connection at ``display`` (its Xauthority read as Qt reads it); None if
    libxcb is missing. Asked because Qt, failing to connect, aborts the process with advice about plugins."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(os.fsencode(display), None)  # never NULL: a failed one reports its error
    try:
        return xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)


def _wayland_answers() -> bool:
    """Whether the compositor's socket (WAYLAND_DISPLAY, in XDG_RUNTIME_DIR unless a path) accepts a connection."""
    name = os.environ.get("WAYLAND_DISPLAY") or "wayland-0"
    path = Path(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent"), name)  # an absolute name stays itself
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(os.fsencode(path))
        except OSError:
            return False
    return True


def open_window(path: Path | None = None, recursive: bool = False, self_test: bool = False) -> int:
    """Run the window until it is closed (on ``path``, scanning at once, if given); the exit code."""
    problem = why_no_window()
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_UNUSABLE
    from PySide6.QtWidgets import QApplication

    from catsort.gui.window import MainWindow, install_excepthook

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("catsort")
    app.setApplicationName("catsort")
    app.setApplicationDisplayName("catsort")
    app.setDesktopFileName("io.github.catsort.catsort")  # the installed .desktop file and AppStream id: taskbar icon, grouping
    app.setWindowIcon(app_icon())  # on X11 (and in the portable bundle, which installs no icon theme) the window's only icon
    if self_test:
        from catsort.gui.selftest import run_self_test

        with throwaway_settings():  # the samples folder must not join the user's Recent, nor the geometry change
            window = MainWindow()
            install_excepthook(window)
            return run_self_test(window)
    window = MainWindow()
    install_excepthook(window)
    with close_on_stop_signals(window) as received:
        window.show()
        if path is not None:
            window.open_folder(path, recursive)
        code = app.exec()
    return EXIT_INTERRUPTED if received else code  # as a terminal program stopped by Ctrl-C


@contextmanager
def close_on_stop_signals(window: QWidget) -> Iterator[list[int]]:
    """Ctrl-C in the terminal the window was started from, a shutdown's SIGTERM and a closed terminal's SIGHUP
    close the window as its close button does: an apply under way finishes the file in hand and ends its
    journal first (``MainWindow.closeEvent``). Yields the signals received, in order.

    Python runs a signal handler only when it next runs bytecode, and Qt's event loop is C++ that would never
    hand back: without the wakeup socket, Ctrl-C did nothing at all. Each signal also writes a byte to it, and
    draining it in a slot is the Python that lets the handler run.
    """
    from PySide6.QtCore import QSocketNotifier

    received: list[int] = []

    def close(signum: int, frame: object) -> None:
        received.append(signum)
        window.close()

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)
    notifier.activated.connect(lambda: reader.recv(512))
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    handlers = handle_stop_signals(close)
    try:
        yield received
    finally:
        restore_handlers(handlers)
        signal.set_wakeup_fd(previous_fd)
        notifier.setEnabled(False)
        reader.close()
        writer.close()


def app_icon() -> QIcon:
    """The app's icon at every size shipped (the same files the .deb installs into the icon theme)."""
    from PySide6.QtGui import QIcon

    from catsort.model import shipped_card_path

    icon = QIcon()
    for png in sorted((shipped_card_path().parent / "icons" / "hicolor").glob("*/apps/catsort.png")):
        icon.addFile(str(png))
    return icon


@contextmanager
def throwaway_settings() -> Iterator[None]:
    """The window's settings (Recent, geometry, options) kept in a temporary folder, removed after: a self-test
    or a benchmark runs the real window, and must not change what the user's window remembers."""
    from PySide6.QtCore import QSettings

    with tempfile.TemporaryDirectory(prefix="catsort-settings-") as folder:
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, folder)
        yield


def main(argv: list[str] | None = None) -> int:
    """``catsort-gui [PATH]``: the window; ``--self-test`` checks a packaged app end to end."""
    from catsort.cli import VersionAction  # the same words as catsort --version, and as light: no Qt is loaded for it

    parser = argparse.ArgumentParser(prog="catsort-gui", description="Sort cat and dog photos, in a window.")
    parser.add_argument("path", nargs="?", type=Path, metavar="PATH", help="folder to open and scan at once")
    parser.add_argument("-r", "--recursive", action="store_true", help="include sub-folders")
    parser.add_argument("--self-test", action="store_true",
                        help="build the window, classify the shipped sample photos, check the verdicts, exit 0 if all match")
    parser.add_argument("--version", action=VersionAction)
    args = parser.parse_args(argv)
    return open_window(args.path, args.recursive, args.self_test)


if __name__ == "__main__":
    sys.exit(main())
