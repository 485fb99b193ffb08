"""``python -m train compare RUN CARD...``: models as they ship, scored on a run's validation splits only.

Whether a new run replaces the shipped model is a choice, so it is made where no figure is reported: the
realtrain validation folds and the PetImages + other validation split (the samples a run froze in its
``samples.json``), never ``real/`` or the held-out folds. Each model runs as the app runs it (int8 graph,
the app's loader, its second look), on the same machine in the same run, because the last bits, and so
the head a run fits, change with the CPU. Its logits get a temperature and pet bias fitted on the other
folds (5 by content hash), as every other choice in ``train/`` scores likelihood.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.stats import bootstrap

from catsort.model import ModelCard
from train import calibrate, metrics
from train.evaluate import predict_logits

SPLITS = ("realtrain_val", "val")
"""The validation splits a comparison scores on: the realtrain validation folds, the PetImages + other validation split."""


def validation_files(run: Path) -> dict[str, list[tuple[Path, str, str]]]:
    """Each validation split's (path, label, sha256) as ``run`` froze them."""
    raw = json.loads((run / "samples.json").read_text())["samples"]
    return {split: [(Path(p), label, sha) for p, label, sha, sp in raw if sp == split] for split in SPLITS}


def cross_fitted_losses(card: ModelCard, files: list[tuple[Path, str, str]], folds: int = 5) -> np.ndarray:
    """Each photo's NLL under the model as it ships, with temperature and pet bias fitted out of its fold, in ``files``' order."""
    sha = {path: digest for path, _, digest in files}
    paths, logits, labels = predict_logits(card, [(path, label) for path, label, _ in files])
    if paths != [path for path, _, _ in files]:
        raise ValueError("a validation photo could not be read, so the models cannot be paired photo by photo")
    fold = np.array([calibrate.fold_of(sha[p], folds) for p in paths])
    return metrics.losses(calibrate.cross_fitted_probabilities(logits, labels, fold), labels)


def paired_difference(first: np.ndarray, other: np.ndarray) -> tuple[float, float, float]:
    """``other``'s mean NLL minus ``first``'s on the same photos, with a 95% bootstrap interval over photos.

    A few hundred validation photos resolve NLL only to about a hundredth, the size of the gaps between
    runs; pairing the photos removes what they have in common (how hard each photo is), so the interval
    says whether a gap is the models' or the sample's. Percentile intervals; when every photo differs by
    the same amount (identical models, or a single photo) every resample gives that amount, which scipy's
    bootstrap refuses to compute.
    """
    diff = other - first
    if np.ptp(diff) == 0:
        return float(diff.mean()), float(diff.mean()), float(diff.mean())
    ci = bootstrap((diff,), np.mean, confidence_level=0.95, n_resamples=9999, method="percentile",
                   random_state=np.random.default_rng(0)).confidence_interval
    return float(diff.mean()), float(ci.low), float(ci.high)


def compare(run: Path, cards: list[Path]) -> dict[str, dict[str, dict[str, float]]]:
    """``{card: {split: {"nll", and for every card after the first "minus_first", "low", "high"}}}``, printed as it goes.

    The lower NLL is the better model; ``minus_first`` and its interval compare each card with the first
    (the shipped model) photo by photo.
    """
    splits = validation_files(run)
    table: dict[str, dict[str, dict[str, float]]] = {}
    first: dict[str, np.ndarray] = {}
    for card_path in cards:
        card = ModelCard.load(card_path)
        row: dict[str, dict[str, float]] = {}
        for split, files in splits.items():
            scored = cross_fitted_losses(card, files)
            row[split] = {"nll": round(float(scored.mean()), 5)}
            if split in first:
                diff, low, high = paired_difference(first[split], scored)
                row[split] |= {"minus_first": round(diff, 5), "low": round(low, 5), "high": round(high, 5)}
            else:
                first[split] = scored
        table[str(card_path)] = row
        print(f"{card.name} ({card_path}): " + ", ".join(_describe(split, score) for split, score in row.items()), flush=True)
    return table


def _describe(split: str, score: dict[str, float]) -> str:
    text = f"{split} NLL {score['nll']:.5f}"
    if "minus_first" in score:
        text += f" ({score['minus_first']:+.5f} vs the first, 95% {score['low']:+.5f} to {score['high']:+.5f})"
    return text
