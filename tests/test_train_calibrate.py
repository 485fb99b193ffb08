"""Cross-fitted calibration: no photo is judged by a calibration fitted on it, and the bound is honest."""

from __future__ import annotations

import numpy as np

from train import calibrate
from train.data import REALTRAIN_FOLDS, REALTRAIN_ROLES, realtrain_role
from train.metrics import CAT, DOG, OTHER


def _logits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), labels] += 4.0
    return logits, labels


def test_upper_bound_is_clopper_pearson() -> None:
    assert abs(calibrate.wrong_upper_bound(0, 600) - (1 - 0.05 ** (1 / 600))) < 1e-9  # closed form at zero
    assert 0.005 < calibrate.wrong_upper_bound(2, 400) < 0.02
    assert calibrate.wrong_upper_bound(0, 0) == 1.0


def test_cross_fit_scores_each_fold_with_a_calibration_fitted_without_it() -> None:
    logits, labels = _logits(500, 0)
    folds = np.arange(500) % 5
    probs, thresholds, fitted = calibrate.cross_fit(logits, labels, folds, None, 0.005)
    assert len(fitted) == 5
    for k, cal in enumerate(fitted):
        assert np.allclose(probs[folds == k], cal.probabilities(logits[folds == k]))
        assert (thresholds[folds == k] == cal.threshold).all()
        assert cal == calibrate.fit(logits[folds != k], labels[folds != k], None, 0.005)


def test_squashed_photos_can_only_raise_the_threshold() -> None:
    logits, labels = _logits(400, 1)
    plain = calibrate.fit(logits, labels, None, 0.005)
    # squashed photos: "other" photos confidently called cats
    sq_logits = np.tile([0.0, -2.0, -2.0], (50, 1))
    sq_logits[:, CAT] = np.linspace(1.0, 6.0, 50)
    sq_labels = np.full(50, OTHER)
    sq_labels[10:] = CAT
    raised = calibrate.fit(logits, labels, (sq_logits, sq_labels), 0.005)
    assert (raised.temperature, raised.pet_bias) == (plain.temperature, plain.pet_bias)
    assert raised.threshold > plain.threshold


def test_decide_and_outcome() -> None:
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    dest = calibrate.decide(probs, np.array([0.8, 0.8, 0.5, 0.5]))
    assert dest.tolist() == [CAT, OTHER, CAT, OTHER]
    out = calibrate.outcome(dest, np.array([CAT, DOG, DOG, OTHER]))
    assert (out["moved"], out["moved_wrong"], out["pets_to_right_folder"], out["other_kept"]) == (2, 1, 1 / 3, 1.0)


def test_realtrain_roles_cover_every_fold_once() -> None:
    folds = sorted(f for r in REALTRAIN_ROLES.values() for f in r)
    assert folds == list(range(REALTRAIN_FOLDS))
    assert realtrain_role("0" * 8 + "00000000" + "0" * 48) == "heldout"
    assert realtrain_role("0" * 8 + "00000005" + "0" * 48) == "val"
    assert realtrain_role("0" * 8 + "00000013" + "0" * 48) == "train"
