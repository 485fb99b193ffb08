"""The predict phase: find a folder's photos, decode them once, run the model, stream the results.

Changes nothing on disk, so it can be cancelled at any moment. The window shows its results as
they arrive; ``--headless`` plans and moves each as it arrives.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from catsort.classify import Prediction, classify_files
from catsort.errors import FolderError
from catsort.fileops import FolderIdentity, check_folder, check_still_there, folder_identity
from catsort.model import Classifier
from catsort.scan import Unreadable, scan


@dataclass(frozen=True)
class FolderScan:
    """What a run will look at: the photo files, and what could not be looked into."""

    root: Path
    files: list[Path]
    unreadable: list[Unreadable]
    identity: FolderIdentity
    """``root``'s when it was scanned: a photo that fails later is checked against it (:func:`check_still_there`)."""

    @property
    def total(self) -> int:
        return len(self.files) + len(self.unreadable)


def scan_folder(root: Path, recursive: bool = False) -> FolderScan:
    root = check_folder(root)
    try:
        identity = folder_identity(root)
    except OSError as exc:
        raise FolderError(f"{root}: cannot read folder: {exc.strerror or exc}") from None
    found = list(scan(root, recursive))
    unreadable = [f for f in found if isinstance(f, Unreadable)]
    if unreadable and unreadable[0].path == root:
        raise FolderError(f"{root}: {unreadable[0].reason}")
    return FolderScan(root, [f for f in found if isinstance(f, Path)], unreadable, identity)


def predict(folder: FolderScan, classifier: Classifier, jobs: int | None = None, thumbnail_size: int | None = None,
            cancel: threading.Event | None = None, known: Mapping[Path, Prediction] | None = None) -> Iterator[Prediction]:
    """One :class:`Prediction` per entry of ``folder``: the unreadable ones first, then every photo, in order.

    ``known``: verdicts from an earlier scan with this classifier (and thumbnail size); a photo still at
    that path with the same size and modification time keeps its verdict, undecoded. After an undo
    every photo is back where it was scanned, and re-classifying 1,000 camera photos took 55 s.

    Raises :class:`~catsort.errors.FolderVanished` at the first photo that fails because the whole
    folder has gone since the scan.
    """
    for bad in folder.unreadable:
        yield Prediction(bad.path, None, None, bad.reason)
    reused = _unchanged(folder.files, known or {})
    fresh = [path for path in folder.files if path not in reused]
    with closing(classify_files(fresh, classifier, jobs, thumbnail_size=thumbnail_size, cancel=cancel)) as results:
        for path in folder.files:
            if cancel is not None and cancel.is_set():
                return
            prediction = reused.get(path) or next(results, None)
            if prediction is None:  # cancelled while the fresh ones were classified
                return
            if prediction.error is not None:
                check_still_there(folder.root, folder.identity)
            yield prediction


def _unchanged(paths: list[Path], known: Mapping[Path, Prediction]) -> dict[Path, Prediction]:
    """The verdicts of ``known`` whose photo is still at its path, unchanged since it was decoded."""
    reused = {}
    for path in paths:
        verdict = known.get(path)
        if verdict is None or verdict.probabilities is None:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue  # decoded afresh, which reports why it cannot be read
        if (st.st_size, st.st_mtime_ns) == verdict.fingerprint:
            reused[path] = verdict
    return reused
