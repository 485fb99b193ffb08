"""The predict phase: find a folder's photos, decode them once, run the model, stream the results.

Changes nothing on disk, so it can be cancelled at any moment. The window shows its results as
they arrive; ``--headless`` plans and moves each as it arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
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
            cancel: threading.Event | None = None) -> Iterator[Prediction]:
    """One :class:`Prediction` per entry of ``folder``: the unreadable ones first, then every photo.

    Raises :class:`~catsort.errors.FolderVanished` at the first photo that fails because the whole
    folder has gone since the scan.
    """
    for bad in folder.unreadable:
        yield Prediction(bad.path, None, None, bad.reason)
    with closing(classify_files(folder.files, classifier, jobs, thumbnail_size=thumbnail_size, cancel=cancel)) as results:
        for prediction in results:
            if prediction.error is not None:
                check_still_there(folder.root, folder.identity)
            yield prediction
