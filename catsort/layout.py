"""Where catsort writes inside a sorted folder, and the names it gives files there.

One small module with no heavy imports, because the scan, the plan, the file operations and the
journal checks all need the same answer to "is this one of our places?", and ``--undo`` must not
load Pillow or onnxruntime to get it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

OUTPUT_FOLDERS = {"cat": "cats", "dog": "dogs"}
"""Label -> the folder (inside the sorted folder) its photos are moved to."""

JOURNAL_FOLDER = ".catsort"
"""Inside the sorted folder: the lock and ``runs/*.jsonl``, one journal per run."""

NAME_MAX_BYTES = 255


def folded(name: str) -> str:
    """A folder's name as a case-insensitive disk (an exFAT stick, macOS, Windows) compares it: CATS/ and cats./
    there are cats/. The scan's skip of the output folders and the journal's check of its sources fold alike, so a
    run never moves a photo its undo would then refuse."""
    return name.casefold().rstrip(". ")


def output_folder_line(root: Path) -> str | None:
    """One line if ``root`` is a folder's cats/ or dogs/, where catsort puts that folder's photos, else None:
    sorting it would make cats/cats/. Said for sure where :func:`made_by_catsort`, as a likelihood elsewhere
    (the user's own folder of cat photos may be named so)."""
    # Folded as a case-insensitive disk (an exFAT stick, macOS) folds it: CATS/ there is cats/.
    label, name = next(((label, name) for label, name in OUTPUT_FOLDERS.items() if name == root.name.casefold()), (None, None))
    if label is None or root.parent == root:
        return None
    if made_by_catsort(root):
        return f"{root} is catsort's {name}/ folder, where the {label} photos of {root.parent} go: sort that folder instead."
    return (f"{root} is named like catsort's {name}/ folder, where the {label} photos of {root.parent} would go: "
            "sort that folder instead, or this one if it is a folder of your own.")


def made_by_catsort(root: Path) -> bool:
    """Whether the folder beside ``root`` holds catsort's journals, so a ``root`` named cats/ is surely its output,
    not a folder of the user's own that happens to have that name."""
    return (root.parent / JOURNAL_FOLDER).is_dir()


def temporary_name(journal_id: str, seq: int) -> str:
    """The hidden name a copy is written under before it is verified and linked into place.

    Journal checks accept no other temporary name, so a crafted journal cannot make recovery
    delete an arbitrary file by calling it a temporary one.
    """
    return f".catsort-{journal_id}-{seq}.tmp"


def candidate_names(name: str) -> Iterator[str]:
    """``IMG_1.jpg``, ``IMG_1 (1).jpg``, ``IMG_1 (2).jpg``, ... each short enough for the filesystem."""
    path = Path(name)
    stem, suffix = path.stem, path.suffix
    raw = os.fsencode(stem)  # a name that is not valid UTF-8 (an old camera, a Windows share) is bytes all the same
    n = 0
    while True:
        tag = f" ({n})" if n else ""
        room = NAME_MAX_BYTES - len(os.fsencode(tag + suffix))
        short = stem if len(raw) <= room else raw[:room].decode("utf-8", errors="ignore")
        yield short + tag + suffix
        n += 1


def undo_temporary_name(journal_id: str, seq: int) -> str:
    """The hidden name an undo copies a photo back under (from a cats/ on another disk) before it takes the photo's
    name. One name per operation, not per process: an undo killed mid-copy leaves a file the next undo of that run
    knows as its own and removes, where a process's name stayed in the photo's folder for good."""
    return f".catsort-undo-{journal_id}-{seq}.tmp"
