"""Model compute per photo: two models' ONNX timed in one run, on the same photos, interleaved.

Photos are decoded and fitted to each model's views beforehand, so only the model is timed (one
thread, batches of 8, as the app's workers batch; a second look runs on the unsure photos of each
batch, as in the app). Absolute figures on a shared machine move between runs;
the ratio of two models timed side by side is the figure to compare.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from catsort.images import ImageError, is_image_name, load_views
from catsort.model import Classifier, ModelCard

BATCH = 8
"""As ``catsort.classify.classify_files`` batches."""


def _batches(card: ModelCard, paths: list[Path]) -> list[list[tuple[np.ndarray, ...]]]:
    photos = []
    for path in paths:
        try:
            photos.append(load_views(path, card.decoded_views))
        except ImageError:
            continue
    return [photos[i : i + BATCH] for i in range(0, len(photos), BATCH)]


def compare(old: Path, new: Path, photos: Path, count: int = 256, repeats: int = 5) -> dict:
    """Median ms per photo of each model over ``repeats`` interleaved passes, and new / old."""
    paths = sorted(p for p in photos.rglob("*") if p.is_file() and is_image_name(p))[:count]
    models = {}
    for name, card_path in (("old", old), ("new", new)):
        card = ModelCard.load(card_path)
        models[name] = (Classifier(card, threads=1), _batches(card, paths), card)
    times: dict[str, list[float]] = {name: [] for name in models}
    for clf, batches, _ in models.values():
        clf.looked_logits(batches[0])  # warm-up
    for _ in range(repeats):
        for name, (clf, batches, _) in models.items():
            start = time.perf_counter()
            for b in batches:
                clf.looked_logits(b)
            n = sum(len(b) for b in batches)
            times[name].append(1000 * (time.perf_counter() - start) / n)
    ms = {name: float(np.median(t)) for name, t in times.items()}
    return {
        "method": f"onnxruntime on 1 thread, batches of {BATCH} (second look on the unsure ones), {len(paths)} photos of {photos.name}/ pre-decoded, "
        f"median of {repeats} interleaved passes, one run",
        "old": {"model": models["old"][2].raw.get("name"), "views": [f"{v.resize} {v.size}" for v in models["old"][2].views],
                "ms_per_photo": round(ms["old"], 2), "passes_ms": [round(t, 2) for t in times["old"]]},
        "new": {"views": [f"{v.resize} {v.size}" for v in models["new"][2].views], "second_look": _second_look(models["new"][2]),
                "ms_per_photo": round(ms["new"], 2), "passes_ms": [round(t, 2) for t in times["new"]]},
        "new_over_old": round(ms["new"] / ms["old"], 3),
    }


def _second_look(card: ModelCard) -> str | None:
    look = card.second_look
    return f"{look.view.resize} {look.view.size} where the first look's top probability is below {look.below}" if look else None
