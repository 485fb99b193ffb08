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
import sys
from pathlib import Path

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
    return None


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
    window = MainWindow()
    install_excepthook(window)
    if self_test:
        from catsort.gui.selftest import run_self_test

        return run_self_test(window)
    window.show()
    if path is not None:
        window.open_folder(path, recursive)
    return app.exec()


def main(argv: list[str] | None = None) -> int:
    """``catsort-gui [PATH]``: the window; ``--self-test`` checks a packaged app end to end."""
    parser = argparse.ArgumentParser(prog="catsort-gui", description="Sort cat and dog photos, in a window.")
    parser.add_argument("path", nargs="?", type=Path, metavar="PATH", help="folder to open and scan at once")
    parser.add_argument("-r", "--recursive", action="store_true", help="include sub-folders")
    parser.add_argument("--self-test", action="store_true",
                        help="build the window, classify the shipped sample photos, check the verdicts, exit 0 if all match")
    args = parser.parse_args(argv)
    return open_window(args.path, args.recursive, args.self_test)


if __name__ == "__main__":
    sys.exit(main())
