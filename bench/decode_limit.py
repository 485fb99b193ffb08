"""The decode-only limit, independent of the app's own loader: what catsort could reach if the model were free.

    python bench/decode_limit.py FOLDER CARD JOBS        -> files/s of a process pool, one process per core
    python bench/decode_limit.py --cost FOLDER CARD      -> CPU ms per photo on one core, by kind (JSON)

Each photo is decoded the cheapest way that still gives the model what it needs: JPEG DCT scaling
(``draft``) to the largest view, EXIF transpose, then the app's own fit per view of the model card
(``catsort.images.fit_views``: the fit is what the model needs, the decode is what the app could do
better). Processes, not threads, so the GIL cannot hide in the baseline the app is judged against.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image, ImageOps

from catsort.images import View, fit_views
from catsort.model import ModelCard


def decode(path: str, views: Sequence[View]) -> int:
    side = max(v.size for v in views)
    with Image.open(path) as img:
        img.draft("RGB", (side, side))
        img = ImageOps.exif_transpose(img.convert("RGB"))
    fit_views(img, views)
    return 1


def _photos(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))


def pool_rate(folder: Path, card: Path, jobs: int) -> float:
    paths, views = _photos(folder), ModelCard.load(card).views
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(decode, paths[:jobs], [views] * jobs))  # workers started and warm before the clock
        start = time.perf_counter()
        done = sum(pool.map(decode, paths, [views] * len(paths), chunksize=4))
        return done / (time.perf_counter() - start)


def cost(folder: Path, card: Path, sample: int = 40) -> dict[str, float]:
    """CPU milliseconds per photo on one core (process time: what the photo costs, whatever else runs), by kind.

    Kinds are told by name: ``cam_*`` camera-like, ``up_*`` upscaled; anything else is ``other``.
    """
    views, by_kind = ModelCard.load(card).views, {}
    paths = _photos(folder)
    step = max(1, len(paths) // sample)
    for path in paths[::step][:sample]:
        kind = Path(path).name.split("_")[0] if Path(path).name[:3] in ("cam", "up_") else "other"
        start = time.process_time()
        decode(path, views)
        by_kind.setdefault(kind, []).append(1000 * (time.process_time() - start))
    out = {k: sum(v) / len(v) for k, v in by_kind.items()}
    out["all"] = sum(sum(v) for v in by_kind.values()) / sum(len(v) for v in by_kind.values())
    return out


if __name__ == "__main__":
    if sys.argv[1] == "--cost":
        print(json.dumps(cost(Path(sys.argv[2]), Path(sys.argv[3]))))
    else:
        print(pool_rate(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
