"""Find the photo files a run should look at, and only those.

Never our own output (``cats/``, ``dogs/`` at the top, and in a sub-folder that was sorted on its
own), never hidden files or folders (that includes the ``.catsort`` journal), never through a
symlink: a link is left alone, not followed out of the tree and not moved as if it were a photo.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from catsort.images import is_image_name
from catsort.layout import JOURNAL_FOLDER, OUTPUT_FOLDERS, folded


@dataclass(frozen=True)
class Unreadable:
    """A folder (or entry) the scan could not look into, with the reason."""

    path: Path
    reason: str


def natural_order(name: str) -> tuple[list[int | str], str]:
    """A sort key that orders names as a file manager does: case aside, and numbers by value (IMG_2 before IMG_10).
    The name itself breaks ties (``a1`` and ``a01``), so the order stays total and stable."""
    parts = re.split(r"(\d+)", name)  # text, number, text, ...: numbers at the odd places (never "²", which is no \d)
    return [int(part) if i % 2 else part.casefold() for i, part in enumerate(parts)], name


def scan(root: Path, recursive: bool = False) -> Iterator[Path | Unreadable]:
    """Yield image paths under ``root`` in a stable order (:func:`natural_order`), or :class:`Unreadable` entries."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: natural_order(e.name))
        except OSError as exc:
            yield Unreadable(folder, f"cannot read folder: {exc.strerror or exc}")
            continue
        sorted_here = folder == root or any(e.name == JOURNAL_FOLDER for e in entries)
        subfolders = []
        for entry in entries:
            if entry.name.startswith(".") or entry.is_symlink():
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive and _looked_into(entry, sorted_here):
                        subfolders.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False) and is_image_name(Path(entry.name)):
                    yield Path(entry.path)
            except OSError as exc:
                yield Unreadable(Path(entry.path), f"cannot inspect: {exc.strerror or exc}")
        stack.extend(reversed(subfolders))


def _looked_into(entry: os.DirEntry, sorted_here: bool) -> bool:
    """Whether a recursive scan enters this sub-folder (neither hidden nor a link, checked by the caller). A folder's own
    cats/ and dogs/ (in any case) are skipped at the top, and in a sub-folder sorted on its own (a .catsort/ beside them): swept into
    the top's, they would be missing from that sub-folder's undo."""
    return not (sorted_here and folded(entry.name) in OUTPUT_FOLDERS.values())


def has_subfolders(root: Path) -> bool:
    """Whether ``root`` has a sub-folder a recursive scan would look into: what makes "include sub-folders" worth offering."""
    try:
        with os.scandir(root) as it:
            return any(not e.name.startswith(".") and not e.is_symlink() and e.is_dir(follow_symlinks=False) and _looked_into(e, True)
                       for e in it)
    except OSError:
        return False


def taken_names(root: Path) -> dict[str, list[str]]:
    """The names already in ``cats/`` and ``dogs/`` (hidden ones too), which a plan must not reuse."""
    taken: dict[str, list[str]] = {}
    for folder in OUTPUT_FOLDERS.values():
        try:
            taken[folder] = os.listdir(root / folder)
        except OSError:
            taken[folder] = []  # absent (created on the first move) or unreadable (the move reports it)
    return taken
