"""Calibration and the default threshold: the product's promise (at most 0.5% of moved files in a
wrong folder)."""

from __future__ import annotations

import numpy as np

from train.metrics import CAT, DOG, OTHER, at_threshold, fit_temperature_and_pet_bias, misplaced, pick_threshold


def _probs(top: list[int], confidence: list[float]) -> np.ndarray:
    probs = np.zeros((len(top), 3))
    for i, (label, p) in enumerate(zip(top, confidence, strict=False)):
        probs[i] = (1 - p) / 2
        probs[i, label] = p
    return probs


def test_threshold_rises_past_a_confident_mistake() -> None:
    # 300 right cats at 0.999 and two "other" photos called cats at 0.8: 2 of 302 moved wrong is 0.66%.
    labels = np.array([CAT] * 300 + [OTHER, OTHER])
    probs = _probs([CAT] * 302, [0.999] * 300 + [0.8, 0.8])
    t = pick_threshold(probs, labels)
    assert 0.8 < t <= 0.999
    assert at_threshold(probs, labels, t)["moved_wrong"] == 0


def test_threshold_respects_what_the_probabilities_expect_even_without_a_counted_mistake() -> None:
    # Every file is right, but half are moved at 0.9 confidence: the model itself expects ~5% of
    # those to be wrong, so a 0.5% promise cannot rest on them having been lucky this time.
    labels = np.array([DOG] * 200 + [CAT] * 200)
    probs = _probs([DOG] * 200 + [CAT] * 200, [0.9] * 200 + [0.999] * 200)
    assert at_threshold(probs, labels, 0.5)["wrong_among_moved"] == 0
    assert at_threshold(probs, labels, 0.5)["expected_wrong_among_moved"] > 0.005
    assert pick_threshold(probs, labels) > 0.9


def test_threshold_is_the_lowest_when_everything_is_confident_and_right() -> None:
    labels = np.array([CAT, DOG, OTHER] * 100)
    probs = _probs(list(labels), [0.9999] * 300)
    assert pick_threshold(probs, labels) == 0.5


def test_temperature_and_pet_bias_recover_how_the_logits_were_distorted() -> None:
    # Labels drawn from softmax(z); the model under test reports 2 * z with pets pushed down by 1.5
    # (in its own units), as a model fitted on unlike training pets would. The fit must undo both.
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, (20000, 3))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = (rng.random(len(z))[:, None] > p.cumsum(axis=1)).sum(axis=1)
    temperature, bias = fit_temperature_and_pet_bias(2.0 * z - [1.5, 1.5, 0.0], labels)
    assert abs(temperature - 2.0) < 0.1
    assert abs(bias - 1.5) < 0.15


def test_misplaced_lists_wrong_moves_first_then_pets_left_in_place() -> None:
    labels = np.array([CAT, OTHER, DOG, CAT, OTHER, DOG, CAT])
    probs = _probs([CAT, CAT, CAT, DOG, OTHER, DOG, OTHER], [0.99, 0.9, 0.95, 0.6, 0.99, 0.7, 0.8])
    # Right move (0), other moved (1), dog moved to cats (2), cat below threshold (3), other kept (4),
    # dog below threshold (5), cat taken for other (6); threshold 0.85.
    assert misplaced(probs, labels, 0.85).tolist() == [2, 1, 6, 5, 3]
