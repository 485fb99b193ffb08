"""Prediction + threshold -> what happens to a file. Pure: no I/O, so the GUI can re-plan instantly.

Probabilities are computed once; the threshold is only a view over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from catsort.classify import Prediction
from catsort.scan import OUTPUT_FOLDERS

Action = Literal["move", "copy", "stay", "error"]
NAME_MAX_BYTES = 255


@dataclass(frozen=True)
class Decision:
    path: Path
    prediction: str | None
    confidence: float | None
    action: Action
    folder: str | None
    """``cats`` or ``dogs`` for a move or copy, else None."""
    error: str | None = None


def decide(pred: Prediction, labels: tuple[str, ...], threshold: float, copy: bool = False) -> Decision:
    if pred.probabilities is None:
        return Decision(pred.path, None, None, "error", None, pred.error)
    best = max(range(len(labels)), key=lambda i: pred.probabilities[i])
    label, confidence = labels[best], pred.probabilities[best]
    if label in OUTPUT_FOLDERS and confidence >= threshold:
        return Decision(pred.path, label, confidence, "copy" if copy else "move", OUTPUT_FOLDERS[label])
    return Decision(pred.path, label, confidence, "stay", None)


def candidate_names(name: str):
    """``IMG_1.jpg``, ``IMG_1 (1).jpg``, ``IMG_1 (2).jpg``, ... each short enough for the filesystem."""
    path = Path(name)
    stem, suffix = path.stem, path.suffix
    n = 0
    while True:
        tag = f" ({n})" if n else ""
        room = NAME_MAX_BYTES - len((tag + suffix).encode())
        short = stem.encode()[:room].decode(errors="ignore")
        yield short + tag + suffix
        n += 1
