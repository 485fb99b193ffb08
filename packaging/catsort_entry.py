"""Entry point of both bundled executables (PyInstaller needs a script, not a console-script name).

The bundle holds two executables built from this one script and sharing one ``_internal/``:
``catsort`` (console: ``--headless``, ``--undo``, ``--version``, the window without arguments) and
``catsort-gui`` (windowed: ``catsort-gui [PATH]``, ``--self-test``). Which one runs is told by the
executable's own name, so one analysis serves both (``catsort.entry:cli`` / ``catsort.entry:gui``,
the same functions as the pip-installed console and gui scripts).
"""

import sys
from pathlib import Path


def _is_gui(executable: str) -> bool:
    stem = Path(executable).stem.lower()  # catsort-gui, catsort-gui.exe, catsort.app/Contents/MacOS/catsort-gui
    return stem.endswith("-gui")


if __name__ == "__main__":
    from catsort.entry import cli, gui

    sys.exit(gui() if _is_gui(sys.executable) else cli())
