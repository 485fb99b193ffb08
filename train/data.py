"""Folders -> labelled, cleaned, de-duplicated file lists with a deterministic train/val/test split.

Duplicates are removed *before* splitting (exact bytes, then perceptual hash), so the same picture
never sits on both sides of the split and the validation figures do not flatter the model.
The split is decided by content hash, not by order or RNG: the same files always land on the
same side, whatever machine or folder they are read from.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import imagehash
from PIL import Image

from catsort.images import ImageError, is_image_name, open_image
from train.metrics import LABELS

NEAR_DUPLICATE_BITS = 4
"""Perceptual hashes (64 bits) this close are the same picture re-encoded, resized or lightly edited."""
_BANDS = NEAR_DUPLICATE_BITS + 1
_FOLDER_LABELS = {"cat": "cat", "cats": "cat", "dog": "dog", "dogs": "dog", "other": "other", "others": "other"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    sha256: str
    split: str = ""


def _label_of(path: Path, root: Path) -> str | None:
    """Microsoft layout (``Cat/1.jpg``), plain label folders (``cats/x.jpg``) or Kaggle names (``cat.1.jpg``)."""
    for part in path.relative_to(root).parts[:-1]:
        if part.lower() in _FOLDER_LABELS:
            return _FOLDER_LABELS[part.lower()]
    prefix = path.name.split(".", 1)[0].lower()
    return _FOLDER_LABELS.get(prefix) if prefix in ("cat", "dog") else None


def labelled_files(labelled: list[Path], other: list[Path]) -> list[tuple[Path, str]]:
    """Every image file under the given folders with its label; ``other`` folders are "other" throughout."""
    found: list[tuple[Path, str]] = []
    for root in labelled:
        for path in sorted(root.rglob("*")):
            if path.is_file() and is_image_name(path) and (label := _label_of(path, root)):
                found.append((path, label))
    for root in other:
        found += [(p, "other") for p in sorted(root.rglob("*")) if p.is_file() and is_image_name(p)]
    return found


class _NearIndex:
    """Finds a stored hash within NEAR_DUPLICATE_BITS of a query without comparing against all.

    Split into NEAR_DUPLICATE_BITS + 1 bands, two hashes that close must agree exactly on at least
    one band (pigeonhole), so only hashes sharing a band are compared bit by bit.
    """

    def __init__(self) -> None:
        self._bands: list[dict[int, list[tuple[int, str]]]] = [{} for _ in range(_BANDS)]

    @staticmethod
    def _keys(value: int) -> list[int]:
        width = -(-64 // _BANDS)
        return [(value >> (i * width)) & ((1 << width) - 1) for i in range(_BANDS)]

    def find(self, value: int) -> str | None:
        for band, key in zip(self._bands, self._keys(value), strict=False):
            for other, label in band.get(key, ()):
                if (other ^ value).bit_count() <= NEAR_DUPLICATE_BITS:
                    return label
        return None

    def add(self, value: int, label: str) -> None:
        for band, key in zip(self._bands, self._keys(value), strict=False):
            band.setdefault(key, []).append((value, label))


def _fingerprint(path: Path) -> tuple[str, str] | str:
    """(sha256, perceptual hash) of a readable image, or the reason it cannot be used."""
    data = path.read_bytes()
    if not data:
        return "empty file"
    try:
        img = open_image(path, 64)
    except ImageError as exc:
        return str(exc)
    return hashlib.sha256(data).hexdigest(), str(imagehash.phash(img.convert("L").resize((64, 64), Image.Resampling.BILINEAR)))


def split_of(sha256: str, val_pct: int = 10, test_pct: int = 10) -> str:
    bucket = int(sha256[:8], 16) % 100
    return "test" if bucket < test_pct else "val" if bucket < test_pct + val_pct else "train"


REALTRAIN_FOLDS = 20
REALTRAIN_ROLES = {"heldout": range(0, 4), "val": range(4, 7), "train": range(7, 20)}
"""Real training photos in 20 folds by content hash: folds 0-3 (20%) are held out and only reported on
(and cross-fit the calibration, see ``train.calibrate``), 4-6 (15%) make the choices, 7-19 (65%) train."""


def realtrain_fold(sha256: str) -> int:
    """Deterministic fold of a real training photo: hash bits not used by :func:`split_of`."""
    return int(sha256[8:16], 16) % REALTRAIN_FOLDS


def realtrain_role(sha256: str) -> str:
    fold = realtrain_fold(sha256)
    return next(role for role, folds in REALTRAIN_ROLES.items() if fold in folds)


def clean_and_split(files: list[tuple[Path, str]], val_pct: int = 10, test_pct: int = 10) -> tuple[list[Sample], dict]:
    """Drop unreadable files and duplicates, then split; returns samples and counts for the model card."""
    skipped: Counter[str] = Counter()
    seen_bytes: set[str] = set()
    seen_look = _NearIndex()
    samples: list[Sample] = []
    with ThreadPoolExecutor() as pool:
        fingerprints = list(pool.map(_fingerprint, [p for p, _ in files]))
    readable = []
    for (path, label), fp in zip(files, fingerprints, strict=False):
        if isinstance(fp, str):
            skipped["unreadable"] += 1
            log.info("skip %s: %s", path, fp)
        else:
            readable.append((fp, path, label))
    # Content order, not folder order: which copy of a duplicate survives must not depend on paths.
    for (digest, look), path, label in sorted(readable, key=lambda item: (item[0][0], str(item[1]))):
        if digest in seen_bytes:
            skipped["exact duplicate"] += 1
            continue
        seen_bytes.add(digest)
        near = seen_look.find(int(look, 16))
        if near is not None:
            skipped["near duplicate" if near == label else "near duplicate with another label"] += 1
            continue
        seen_look.add(int(look, 16), label)
        samples.append(Sample(path, label, digest, split_of(digest, val_pct, test_pct)))
    counts = Counter((s.split, s.label) for s in samples)
    stats = {
        "skipped": dict(skipped),
        "splits": {sp: {lb: counts[(sp, lb)] for lb in LABELS} for sp in ("train", "val", "test")},
        "fingerprint": hashlib.sha256("".join(sorted(s.sha256 for s in samples)).encode()).hexdigest(),
    }
    for reason, n in skipped.items():
        log.warning("skipped %d files: %s", n, reason)
    return samples, stats
