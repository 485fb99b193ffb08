"""The card's account of its targets is computed from its own figures: met and missed both show."""

from __future__ import annotations

from train.targets import reached


def _outcome(pets: float, kept: float, wrong: int, moved: int) -> dict:
    return {"files": 1000, "pets_to_right_folder": pets, "other_kept": kept, "moved": moved, "moved_wrong": wrong,
            "wrong_among_moved": wrong / moved, "wrong_among_moved_upper95": (wrong + 3) / moved}


def test_each_target_is_judged_from_the_card() -> None:
    card = {
        "metrics": {
            "cross_fitted": {"real": _outcome(0.981, 0.99, 1, 700), "realtrain_heldout": _outcome(0.95, 0.99, 3, 250),
                             "pooled": _outcome(0.97, 0.99, 4, 950)},
            "petimages_other_test_split": {"files": 2986, "cat_vs_dog_accuracy": 0.992, "at_default_threshold": _outcome(0.9, 1.0, 2, 2000)},
        },
        "model": {"nested_selection": {"real": _outcome(0.93, 0.9975, 3, 746), "realtrain_heldout": _outcome(0.94, 1.0, 0, 257)}},
        "compute": {"new_over_old": 0.52},
        "onnx": {"bytes": 9_500_000},
    }
    lines = reached(card)
    assert lines["real (cross-fitted, 1,000)"] == (
        "pets 98.1% (>= 98%: met), other kept 99.00% (>= 99.5%: missed), wrong 1 of 700 = 0.14%, 95% bound 0.57% (<= 0.5%: met as counted)"
    )
    assert "hard non-pets kept 99.00% (>= 98%: met)" in lines["realtrain held-out (cross-fitted, 1,000)"]
    assert "(<= 0.5%: missed as counted)" in lines["realtrain held-out (cross-fitted, 1,000)"]
    assert lines["PetImages + other test (2,986)"].startswith("cat vs dog 99.2% (>= 99%: met), wrong 2 of 2,000")
    assert lines["compute"] == "0.520 of v1's ms per non-pet photo (<= 0.5: missed)"
    assert lines["onnx"] == "9.50 MB (<= 20 MB: met)"
    assert lines["real, view and weight chosen without the fold (nested)"].startswith("pets 93.0%, other kept 99.75%, wrong 3 of 746")
