"""The catsort window (PySide6): the only package that imports Qt; a thin shell over the core."""
