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

from catsort.model import ModelCard
from train import calibrate, metrics
from train.evaluate import predict_logits

SPLITS = ("realtrain_val", "val")
"""The validation splits a comparison scores on: the realtrain validation folds, the PetImages + other validation split."""


def validation_files(run: Path) -> dict[str, list[tuple[Path, str, str]]]:
    """Each validation split's (path, label, sha256) as ``run`` froze them."""
    raw = json.loads((run / "samples.json").read_text())["samples"]
    return {split: [(Path(p), label, sha) for p, label, sha, sp in raw if sp == split] for split in SPLITS}


def cross_fitted_nll(card: ModelCard, files: list[tuple[Path, str, str]], folds: int = 5) -> float:
    """The model's NLL on ``files`` as it ships, with temperature and pet bias fitted out of each photo's fold."""
    sha = {path: digest for path, _, digest in files}
    paths, logits, labels = predict_logits(card, [(path, label) for path, label, _ in files])
    fold = np.array([calibrate.fold_of(sha[p], folds) for p in paths])
    return metrics.nll(calibrate.cross_fitted_probabilities(logits, labels, fold), labels)


def compare(run: Path, cards: list[Path]) -> dict[str, dict[str, float]]:
    """``{card: {split: NLL}}`` for every card, printed as it goes; the lower is the better model."""
    splits = validation_files(run)
    table: dict[str, dict[str, float]] = {}
    for card_path in cards:
        card = ModelCard.load(card_path)
        table[str(card_path)] = {split: round(cross_fitted_nll(card, files), 5) for split, files in splits.items()}
        print(f"{card.name} ({card_path}): " + ", ".join(f"{split} NLL {n:.5f}" for split, n in table[str(card_path)].items()), flush=True)
    return table
