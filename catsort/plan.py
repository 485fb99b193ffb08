"""Predictions + threshold + the user's overrides -> what happens to each file, with its real name.

Pure: no I/O, so the window re-plans 20,000 photos on every move of the threshold slider, and
light: importing it loads neither Pillow nor onnxruntime. Probabilities are computed once; the
threshold is only a view over them. The destination names are the ones a run will write (a
name already taken in ``cats/``, or by another photo of the same plan, becomes ``IMG_1 (1).jpg``),
so a preview shows what happens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from catsort.layout import OUTPUT_FOLDERS, candidate_names

if TYPE_CHECKING:
    from catsort.classify import Prediction

Action = Literal["move", "copy", "stay", "error"]
Override = Literal["cat", "dog", "stay"]
"""What a user may say about one photo: it is a cat, a dog, or it stays where it is."""
OVERRIDES: tuple[Override, ...] = ("cat", "dog", "stay")


@dataclass(slots=True)
class Decision:
    """One photo's fate; read-only by convention (not ``frozen``: that costs half the time of a 20,000-photo re-plan)."""

    path: Path
    prediction: str | None
    """The model's likeliest label (None for an unreadable file)."""
    confidence: float | None
    action: Action
    folder: str | None
    """``cats`` or ``dogs`` for a move or copy, else None."""
    name: str | None = None
    """The file name it gets inside ``folder``."""
    error: str | None = None
    overridden: bool = False
    fingerprint: tuple[int, int] | None = None
    copied_to: str | None = None
    """Where an earlier copy run's copy of it still is (``cats/IMG_1.jpg``): a copy run leaves it, not copying it twice."""

    @property
    def unsure(self) -> bool:
        """The best guess is a pet, but below the threshold: it stays unless the user says otherwise."""
        return self.action == "stay" and not self.overridden and self.copied_to is None and self.prediction in OUTPUT_FOLDERS


class Planner:
    """Turns predictions into decisions one at a time (so a headless run streams), giving each
    moved photo a name free both on disk (``taken``) and among the photos planned before it."""

    def __init__(self, labels: tuple[str, ...], threshold: float, copy: bool = False,
                 taken: Mapping[str, Iterable[str]] | None = None, copied: Mapping[Path, str] | None = None) -> None:
        self.labels = labels
        self.threshold = threshold
        self.action: Action = "copy" if copy else "move"
        self._used = {folder: set((taken or {}).get(folder, ())) for folder in OUTPUT_FOLDERS.values()}
        self._copied = (copied or {}) if copy else {}
        """``apply.copied_before``: in copy mode, the photos whose copy an earlier run made (a move still moves them)."""

    def decide(self, pred: Prediction, override: Override | None = None) -> Decision:
        if pred.probabilities is None:
            return Decision(pred.path, None, None, "error", None, error=pred.error)
        probs = pred.probabilities
        confidence = max(probs)
        label = self.labels[probs.index(confidence)]
        target = override if override is not None else (label if confidence >= self.threshold else "stay")
        if target not in OUTPUT_FOLDERS:
            return Decision(pred.path, label, confidence, "stay", None, overridden=override is not None, fingerprint=pred.fingerprint)
        folder = OUTPUT_FOLDERS[target]
        copied_to = self._copied.get(pred.path)
        if override is None and copied_to is not None and copied_to.startswith(f"{folder}/"):  # the user's say copies it again
            return Decision(pred.path, label, confidence, "stay", None, fingerprint=pred.fingerprint, copied_to=copied_to)
        used = self._used[folder]
        name = pred.path.name  # a name on disk already fits the filesystem: the first candidate is itself
        if name in used:
            name = next(n for n in candidate_names(name) if n not in used)
        used.add(name)
        return Decision(pred.path, label, confidence, self.action, folder, name, None, override is not None, pred.fingerprint)


    def plan_all(self, predictions: Iterable[Prediction], overrides: Mapping[Path, Override] | None = None) -> list[Decision]:
        """Every prediction's decision, the user's ``overrides`` winning over the model."""
        overrides = overrides or {}
        return [self.decide(p, overrides.get(p.path)) for p in predictions]


def plan(predictions: Iterable[Prediction], labels: tuple[str, ...], threshold: float, copy: bool = False,
         overrides: Mapping[Path, Override] | None = None, taken: Mapping[str, Iterable[str]] | None = None) -> list[Decision]:
    """Every prediction's decision at ``threshold``, the user's ``overrides`` winning over the model."""
    return Planner(labels, threshold, copy, taken).plan_all(predictions, overrides)
