"""What the product promises, as numbers: right folder, left alone, and how often a move is wrong.

A file is *moved* when its top label is cat or dog with calibrated probability >= threshold.
``wrong_among_moved`` counts cat<->dog swaps and "other" photos moved, over all moved files.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from catsort.model import calibrated_probabilities as softmax

LABELS = ("cat", "dog", "other")
CAT, DOG, OTHER = range(3)


def decisions(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Index of the folder each file goes to (CAT, DOG) or OTHER for "stays where it is"."""
    top = probs.argmax(axis=1)
    moved = (top != OTHER) & (probs.max(axis=1) >= threshold)
    return np.where(moved, top, OTHER)


def misplaced(probs: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the files that would not end where they belong, the ones to look at first.

    Moves to a wrong folder come first, then pets left in place; each group most confident first.
    """
    dest = decisions(probs, threshold)
    confidence = probs.max(axis=1)
    groups = (np.flatnonzero((dest != OTHER) & (dest != labels)), np.flatnonzero((dest == OTHER) & (labels != OTHER)))
    return np.concatenate([g[np.argsort(-confidence[g], kind="stable")] for g in groups])


def at_threshold(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    dest = decisions(probs, threshold)
    moved = dest != OTHER
    wrong = moved & (dest != labels)
    pets = labels != OTHER
    return {
        "threshold": float(threshold),
        "moved_share": float(moved.mean()) if len(labels) else 0.0,
        "pets_to_right_folder": float((dest[pets] == labels[pets]).mean()) if pets.any() else float("nan"),
        "other_kept": float((dest[~pets] == OTHER).mean()) if (~pets).any() else float("nan"),
        "wrong_among_moved": float(wrong.sum() / moved.sum()) if moved.any() else 0.0,
        "moved": int(moved.sum()),
        "moved_wrong": int(wrong.sum()),
        "expected_wrong_among_moved": float(1.0 - probs[moved].max(axis=1).mean()) if moved.any() else 0.0,
    }


def losses(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each photo's negative log-likelihood of its true label (kept per photo so two models can be paired)."""
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels: the one measure every choice on real photos minimises."""
    return float(losses(probs, labels).mean())


def summary(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    top = probs.argmax(axis=1)
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (labels, top), 1)
    per_class = {}
    for i, name in enumerate(LABELS):
        predicted, actual = confusion[:, i].sum(), confusion[i].sum()
        per_class[name] = {
            "precision": float(confusion[i, i] / predicted) if predicted else None,
            "recall": float(confusion[i, i] / actual) if actual else None,
            "support": int(actual),
        }
    pets = labels != OTHER
    cat_vs_dog = probs[pets][:, [CAT, DOG]].argmax(axis=1) == labels[pets]
    return {
        "files": int(len(labels)),
        "accuracy": float((top == labels).mean()),
        "cat_vs_dog_accuracy": float(cat_vs_dog.mean()) if pets.any() else None,
        "nll": nll(probs, labels),
        "per_class": per_class,
        "confusion_matrix": {"rows_true_cols_predicted": list(LABELS), "counts": confusion.tolist()},
        "at_default_threshold": at_threshold(probs, labels, threshold),
    }


def sweep(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray | None = None) -> list[dict]:
    thresholds = np.round(np.linspace(0.34, 0.999, 60), 4) if thresholds is None else thresholds
    return [at_threshold(probs, labels, float(t)) for t in thresholds]


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising negative log-likelihood (a 1-D search is enough and cannot diverge)."""
    grid = np.exp(np.linspace(np.log(0.2), np.log(10.0), 400))
    return float(grid[int(np.argmin([nll(softmax(logits, t), labels) for t in grid]))])


def fit_temperature_and_pet_bias(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(temperature, bias added to the cat and dog logits) minimising negative log-likelihood.

    Photos of pets look less like the training pets than other photos look like the training
    "other", so a model fitted on the training data under-rates "pet" on real photos; one bias,
    fitted with the temperature on real photos, corrects that without touching cat vs dog.
    Fitted as (1/T, bias/T), in which the log-likelihood is concave: the optimum is global.
    """
    pet = np.array([1.0, 1.0, 0.0])

    def loss(x: np.ndarray) -> float:
        z = logits * x[0] + pet * x[1]
        return float((logsumexp(z, axis=1) - z[np.arange(len(labels)), labels]).mean())

    x = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B", bounds=[(0.1, 5.0), (-10.0, 10.0)]).x
    return float(1.0 / x[0]), float(x[1] / x[0])


def pick_threshold(probs: np.ndarray, labels: np.ndarray, max_wrong: float = 0.005) -> float:
    """The lowest threshold from which moved files are at most ``max_wrong`` in the wrong folder.

    Two estimates must both hold: the counted share of wrong moves, and the share the calibrated
    probabilities expect (mean of 1 - top probability over moved files). With ~400 moved
    calibration photos a 0.5% bound is two files, so the count alone swings with one photo; the
    expectation uses every photo's confidence and is what keeps the threshold from being fitted to
    the few mistakes that happen to be in the calibration set. Lowest, because every step up
    leaves more pets unsorted; "from which" because the bound must hold for all higher thresholds.
    """
    candidates = np.round(np.arange(0.50, 0.9995, 0.005), 4)
    stats = [at_threshold(probs, labels, t) for t in candidates]
    ok = [max(s["wrong_among_moved"], s["expected_wrong_among_moved"]) <= max_wrong for s in stats]
    for i, t in enumerate(candidates):
        if all(ok[i:]):
            return float(t)
    return float(candidates[-1])
