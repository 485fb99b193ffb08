"""Temperature, pet bias and default threshold by cross-fitting over folds of the real photos.

The pool is every photo of ``real/`` plus the held-out realtrain fold (~1,700 photos). Each of
``k`` folds (by content hash) is scored with a calibration fitted on the other ``k - 1``; the pooled
out-of-fold decisions are the reported figure, so no photo is judged by a calibration fitted on it.
The calibration that ships is the same procedure fitted on the whole pool: the cross-fitted figure
estimates how that procedure does on photos it has not seen.

The threshold must also keep wrong moves <= ``max_wrong`` on the squashed 180 px photos, checked on
the PetImages + other *validation* split (the test split only reports).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import beta

from train import metrics

PET = np.array([1.0, 1.0, 0.0])


@dataclass(frozen=True)
class Calibration:
    temperature: float
    pet_bias: float
    threshold: float

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return metrics.softmax(logits + self.pet_bias * PET, self.temperature)


def fold_of(sha256: str, k: int) -> int:
    """Cross-fitting fold by content hash (bits no other split uses)."""
    return int(sha256[16:24], 16) % k


def wrong_upper_bound(wrong: int, moved: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on the share of wrong moves."""
    if moved == 0:
        return 1.0
    return 1.0 if wrong >= moved else float(beta.ppf(confidence, wrong + 1, moved - wrong))


def fit(logits: np.ndarray, labels: np.ndarray, squashed: tuple[np.ndarray, np.ndarray] | None, max_wrong: float) -> Calibration:
    """Temperature and pet bias by likelihood on real photos, then the lowest safe threshold.

    The threshold is :func:`metrics.pick_threshold` on the real photos (counted and expected share of
    wrong moves), raised if needed until the counted share on the squashed photos stays <= ``max_wrong``
    too from there up.
    """
    temperature, bias = metrics.fit_temperature_and_pet_bias(logits, labels)
    cal = Calibration(temperature, bias, 0.5)
    threshold = metrics.pick_threshold(cal.probabilities(logits), labels, max_wrong)
    if squashed is not None:
        s_logits, s_labels = squashed
        probs = cal.probabilities(s_logits)
        candidates = np.round(np.arange(0.50, 0.9995, 0.005), 4)
        ok = [metrics.at_threshold(probs, s_labels, t)["wrong_among_moved"] <= max_wrong for t in candidates]
        floor = next((float(t) for i, t in enumerate(candidates) if all(ok[i:])), float(candidates[-1]))
        threshold = max(threshold, floor)
    return Calibration(temperature, bias, float(threshold))


def cross_fitted_probabilities(logits: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold's probabilities with a temperature and pet bias fitted on the other folds (likelihood only, no threshold)."""
    probs = np.zeros((len(labels), 3))
    for k in np.unique(folds):
        held = folds == k
        temperature, bias = metrics.fit_temperature_and_pet_bias(logits[~held], labels[~held])
        probs[held] = metrics.softmax(logits[held] + bias * PET, temperature)
    return probs


def cross_fit(
    logits: np.ndarray, labels: np.ndarray, folds: np.ndarray, squashed: tuple[np.ndarray, np.ndarray] | None, max_wrong: float
) -> tuple[np.ndarray, np.ndarray, list[Calibration]]:
    """(out-of-fold probabilities, each photo's out-of-fold threshold, the per-fold calibrations)."""
    probs = np.zeros((len(labels), 3))
    thresholds = np.zeros(len(labels))
    fitted = []
    for k in np.unique(folds):
        held = folds == k
        cal = fit(logits[~held], labels[~held], squashed, max_wrong)
        probs[held] = cal.probabilities(logits[held])
        thresholds[held] = cal.threshold
        fitted.append(cal)
    return probs, thresholds, fitted


def decide(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Folder per photo (CAT, DOG or OTHER = stays) with a threshold per photo."""
    top = probs.argmax(axis=1)
    moved = (top != metrics.OTHER) & (probs.max(axis=1) >= thresholds)
    return np.where(moved, top, metrics.OTHER)


def outcome(dest: np.ndarray, labels: np.ndarray) -> dict:
    """What a run leaves where: the three figures of the targets table, with the wrong moves' upper bound."""
    moved = dest != metrics.OTHER
    wrong = moved & (dest != labels)
    pets = labels != metrics.OTHER
    return {
        "files": int(len(labels)),
        "pets": int(pets.sum()),
        "pets_to_right_folder": float((dest[pets] == labels[pets]).mean()) if pets.any() else None,
        "other_kept": float((dest[~pets] == metrics.OTHER).mean()) if (~pets).any() else None,
        "moved": int(moved.sum()),
        "moved_wrong": int(wrong.sum()),
        "wrong_among_moved": float(wrong.sum() / moved.sum()) if moved.any() else 0.0,
        "wrong_among_moved_upper95": wrong_upper_bound(int(wrong.sum()), int(moved.sum())),
    }


def as_dict(cal: Calibration) -> dict:
    return {k: round(v, 5) for k, v in asdict(cal).items()}
