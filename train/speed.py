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


def _sample(photos: Path, count: int) -> dict[str, list[Path]]:
    """Up to ``count`` photos per sub-folder of ``photos`` (``cat/``, ``dog/``, ``other/``), evenly spread over its
    sorted names: a second look costs what its gate lets through, so pets and non-pets are timed apart."""
    groups: dict[str, list[Path]] = {}
    for p in sorted(p for p in photos.rglob("*") if p.is_file() and is_image_name(p)):
        groups.setdefault(p.relative_to(photos).parts[0] if p.parent != photos else ".", []).append(p)
    return {name: paths[:: max(1, len(paths) // count)][:count] for name, paths in groups.items()}


def compare(old: Path, new: Path, photos: Path, count: int = 256, repeats: int = 5) -> dict:
    """Median ms per photo of each model over ``repeats`` interleaved passes, per sub-folder of ``photos``, and new / old.

    ``new_over_old`` is on the non-pets (``other/``; without one, on all the photos timed): issue 17's budget is
    per photo of a folder of mostly non-pet photos, and a cascade's gate lets through more pets than non-pets.
    """
    groups = _sample(photos, count)
    models = {}
    for name, card_path in (("old", old), ("new", new)):
        card = ModelCard.load(card_path)
        models[name] = (Classifier(card, threads=1), {g: _batches(card, paths) for g, paths in groups.items()}, card)
    # Photos that decoded, per sub-folder (an unreadable one is unreadable for both models): the divisor of every pass.
    decoded = {g: sum(len(b) for b in models["new"][1][g]) for g in groups}
    times: dict[tuple[str, str], list[float]] = {(name, g): [] for name in models for g in groups}
    for clf, batches, _ in models.values():
        clf.looked_logits(next(iter(batches.values()))[0])  # warm-up
    for _ in range(repeats):
        for g in groups:
            for name, (clf, batches, _) in models.items():
                start = time.perf_counter()
                for b in batches[g]:
                    clf.looked_logits(b)
                times[name, g].append(1000 * (time.perf_counter() - start) / decoded[g])
    ms = {key: float(np.median(t)) for key, t in times.items()}
    ratio = {g: round(ms["new", g] / ms["old", g], 3) for g in groups}
    pooled = {name: sum(ms[name, g] * n for g, n in decoded.items()) for name in models}

    def account(name: str) -> dict:
        card = models[name][2]
        return {"model": card.raw.get("name"), "views": [f"{v.resize} {v.size}" for v in card.views], "second_look": _second_look(card),
                "ms_per_photo": {g: round(ms[name, g], 2) for g in groups},
                "passes_ms": {g: [round(t, 2) for t in times[name, g]] for g in groups}}

    return {
        "method": f"onnxruntime on 1 thread, batches of {BATCH} (second look on the unsure ones), up to {count} photos of each sub-folder "
        f"of {photos.name}/ ({', '.join(f'{g} {len(p)}' for g, p in groups.items())}) pre-decoded, median of {repeats} interleaved passes, one run",
        "old": account("old"),
        "new": account("new"),
        "new_over_old_by_folder": ratio,
        "new_over_old_all_timed": round(pooled["new"] / pooled["old"], 3),
        "new_over_old": ratio.get("other", round(pooled["new"] / pooled["old"], 3)),
    }


def _second_look(card: ModelCard) -> str | None:
    look = card.second_look
    return f"{look.view.resize} {look.view.size} {look.when()} at the first look" if look else None
