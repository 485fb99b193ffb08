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
