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

from catsort.model import SecondLook, merge_second_look, needs_second_look
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


@dataclass(frozen=True)
class Looks:
    """Logits of the first look at every photo and, for a cascade, of the second look and its gate.

    Which photos get the second look depends on the calibration (the gate compares the calibrated
    probabilities with ``gate``'s bounds, as the app does), so a calibration is fitted on :meth:`logits`
    of its own making, and every report scores the cascade with the calibration that gated it.
    """

    first: np.ndarray
    second: np.ndarray | None = None
    gate: SecondLook | None = None

    def looked(self, temperature: float, pet_bias: float) -> np.ndarray:
        """Which photos the app's gate sends to the second look under this calibration."""
        if self.second is None or self.gate is None:
            return np.zeros(len(self.first), bool)
        return needs_second_look(self.first + pet_bias * PET, temperature, self.gate, metrics.OTHER)

    def logits(self, temperature: float, pet_bias: float) -> np.ndarray:
        """The logits (pet bias not included) the app would act on, with this calibration."""
        if self.second is None:
            return self.first
        looked = self.looked(temperature, pet_bias)
        return merge_second_look(self.first, self.second[looked], looked)

    def subset(self, sel: np.ndarray) -> Looks:
        return Looks(self.first[sel], None if self.second is None else self.second[sel], self.gate)

    def looked_share(self, cal: Calibration) -> float:
        """Share of these photos that get the second look under ``cal``."""
        return float(self.looked(cal.temperature, cal.pet_bias).mean())


LogitsOrLooks = np.ndarray | Looks
GATE_REFITS = 3
"""Temperature and bias are refitted on the cascade's output this many times, each with the gate the last fit set."""


def _looks(x: LogitsOrLooks) -> Looks:
    return x if isinstance(x, Looks) else Looks(x)


def fit_likelihood(looks: LogitsOrLooks, labels: np.ndarray) -> tuple[float, float]:
    """Temperature and pet bias by likelihood; for a cascade, on the output its own gate makes."""
    looks = _looks(looks)
    temperature, bias = metrics.fit_temperature_and_pet_bias(looks.first, labels)
    for _ in range(GATE_REFITS if looks.second is not None else 0):
        temperature, bias = metrics.fit_temperature_and_pet_bias(looks.logits(temperature, bias), labels)
    return temperature, bias


def fit(logits: LogitsOrLooks, labels: np.ndarray, squashed: tuple[LogitsOrLooks, np.ndarray] | None, max_wrong: float) -> Calibration:
    """Temperature and pet bias by likelihood on real photos, then the lowest safe threshold.

    The threshold is :func:`metrics.pick_threshold` on the real photos (counted and expected share of
    wrong moves), raised if needed until the counted share on the squashed photos stays <= ``max_wrong``
    too from there up. A cascade's threshold is picked on the output of the gate as it ships.
    """
    looks = _looks(logits)
    temperature, bias = fit_likelihood(looks, labels)
    cal = Calibration(temperature, bias, 0.5)
    threshold = metrics.pick_threshold(calibrated(looks, cal), labels, max_wrong)
    if squashed is not None:
        s_looks, s_labels = _looks(squashed[0]), squashed[1]
        probs = calibrated(s_looks, cal)
        candidates = np.round(np.arange(0.50, 0.9995, 0.005), 4)
        ok = [metrics.at_threshold(probs, s_labels, t)["wrong_among_moved"] <= max_wrong for t in candidates]
        floor = next((float(t) for i, t in enumerate(candidates) if all(ok[i:])), float(candidates[-1]))
        threshold = max(threshold, floor)
    return Calibration(temperature, bias, float(threshold))


def calibrated(looks: LogitsOrLooks, cal: Calibration) -> np.ndarray:
    """Probabilities of ``looks`` under ``cal``, the gate included."""
    return cal.probabilities(_looks(looks).logits(cal.temperature, cal.pet_bias))


def cross_fitted_probabilities(logits: LogitsOrLooks, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold's probabilities with a temperature and pet bias fitted on the other folds (likelihood only, no threshold)."""
    looks = _looks(logits)
    probs = np.zeros((len(labels), 3))
    for k in np.unique(folds):
        held = folds == k
        temperature, bias = fit_likelihood(looks.subset(~held), labels[~held])
        probs[held] = calibrated(looks.subset(held), Calibration(temperature, bias, 0.5))
    return probs


def cross_fit(
    logits: LogitsOrLooks, labels: np.ndarray, folds: np.ndarray, squashed: tuple[LogitsOrLooks, np.ndarray] | None, max_wrong: float
) -> tuple[np.ndarray, np.ndarray, list[Calibration]]:
    """(out-of-fold probabilities, each photo's out-of-fold threshold, the per-fold calibrations)."""
    looks = _looks(logits)
    probs = np.zeros((len(labels), 3))
    thresholds = np.zeros(len(labels))
    fitted = []
    for k in np.unique(folds):
        held = folds == k
        cal = fit(looks.subset(~held), labels[~held], squashed, max_wrong)
        probs[held] = calibrated(looks.subset(held), cal)
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
