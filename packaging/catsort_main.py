"""Entry point of the bundled executable (PyInstaller needs a script, not a console-script name)."""

import sys

from catsort.cli import main

if __name__ == "__main__":
    sys.exit(main())
