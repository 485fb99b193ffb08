"""PyInstaller runtime hook of the bundle: Ctrl-C while it starts is one line, not a traceback.

A custom runtime hook runs before PyInstaller's own (``pyi_rth_pyside6``, ``pyi_rth_multiprocessing``, ...),
which take the bundle's first tenth of a second; without this, Ctrl-C there printed a traceback of one of
them and "Failed to execute script". ``catsort_entry.py`` runs too late to cover them.
"""

from catsort.entry import stop_quietly_while_starting

stop_quietly_while_starting()
