"""The issue's targets, and the card's account of which were reached, written from the card's own figures.

Kept apart from ``fit.py`` (which imports TensorFlow) so ``python -m train ship`` can write the
account after timing the model: compute is only known then.
"""

from __future__ import annotations

import operator

TARGETS = {
    "real": {"pets_to_right_folder": ">= 0.98", "other_kept": ">= 0.995", "wrong_among_moved": "<= 0.005"},
    "realtrain_heldout": {"pets_to_right_folder": ">= 0.97", "other_kept (hard non-pets)": ">= 0.98", "wrong_among_moved": "<= 0.005"},
    "petimages_test": {"cat_vs_dog_accuracy": ">= 0.99", "wrong_among_moved": "<= 0.005"},
    "compute_per_photo_new_over_v1": "<= 0.5",
    "onnx_bytes": "<= 20 MB",
}
_OPS = {">=": operator.ge, "<=": operator.le}


def _check(value: float, target: str, share: bool = True) -> str:
    """``"(>= 98%: met)"``-style verdict of ``value`` against a target like ``">= 0.98"``."""
    op, bound = target.split()
    shown = f"{float(bound):.1%}".replace(".0%", "%") if share else bound
    return f"{op} {shown}: {'met' if _OPS[op](value, float(bound)) else 'missed'}"


def _moves(m: dict, target: str | None) -> str:
    text = f"wrong {m['moved_wrong']:,} of {m['moved']:,} = {m['wrong_among_moved']:.2%}, 95% bound {m['wrong_among_moved_upper95']:.2%}"
    return text + (f" ({_check(m['wrong_among_moved'], target)} as counted)" if target else "")


def _domain(m: dict, targets: dict | None, other: str = "other kept") -> str:
    t = targets or {}
    pets = f"pets {m['pets_to_right_folder']:.1%}" + (f" ({_check(m['pets_to_right_folder'], t['pets_to_right_folder'])})" if t else "")
    kept_target = next((v for k, v in t.items() if k.startswith("other_kept")), None)
    kept = f"{other} {m['other_kept']:.2%}" + (f" ({_check(m['other_kept'], kept_target)})" if kept_target else "")
    return f"{pets}, {kept}, {_moves(m, t.get('wrong_among_moved'))}"


def reached(card: dict) -> dict[str, str]:
    """One line per target group, from ``card['metrics']``, ``card['compute']`` and ``card['onnx']``."""
    cross = card["metrics"]["cross_fitted"]
    out = {
        f"real (cross-fitted, {cross['real']['files']:,})": _domain(cross["real"], TARGETS["real"]),
        f"realtrain held-out (cross-fitted, {cross['realtrain_heldout']['files']:,})":
            _domain(cross["realtrain_heldout"], TARGETS["realtrain_heldout"], "hard non-pets kept"),
        f"pooled ({cross['pooled']['files']:,})": _domain(cross["pooled"], None),
    }
    nested = card.get("model", {}).get("nested_selection")
    if nested:
        out["real, view and weight chosen without the fold (nested)"] = _domain(nested["real"], None)
        out["realtrain held-out, nested"] = _domain(nested["realtrain_heldout"], None, "hard non-pets kept")
    test = card["metrics"]["petimages_other_test_split"]
    at = test["at_default_threshold"]
    out[f"PetImages + other test ({test['files']:,})"] = (
        f"cat vs dog {test['cat_vs_dog_accuracy']:.1%} ({_check(test['cat_vs_dog_accuracy'], TARGETS['petimages_test']['cat_vs_dog_accuracy'])}), "
        + _moves(at, TARGETS["petimages_test"]["wrong_among_moved"])
    )
    if "compute" in card:
        ratio = card["compute"]["new_over_old"]
        out["compute"] = f"{ratio:.3f} of v1's ms per non-pet photo ({_check(ratio, TARGETS['compute_per_photo_new_over_v1'], share=False)})"
    mb = card["onnx"]["bytes"] / 1e6
    out["onnx"] = f"{mb:.2f} MB ({'<= 20 MB: met' if mb <= 20 else '<= 20 MB: missed'})"
    return out
