"""The decode-only limit, independent of the app's own loader: what catsort could reach if the model were free.

    python bench/decode_limit.py FOLDER CARD JOBS        -> files/s of a process pool, one process per core
    python bench/decode_limit.py --cost FOLDER CARD      -> CPU ms per photo on one core, by kind (JSON)

Each photo is decoded the cheapest way that still gives the model what it needs: JPEG DCT scaling
(``draft``) to the largest view, EXIF transpose, then one resize per view of the model card. Processes,
not threads, so the GIL cannot hide in the baseline the app is judged against.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image, ImageOps


def views_of(card: Path) -> list[tuple[int, str]]:
    raw = json.loads(card.read_text())
    return [(int(v["size"]), str(v["resize"])) for v in raw["input"]["views"]]


def decode(path: str, views: list[tuple[int, str]]) -> int:
    side = max(size for size, _ in views)
    with Image.open(path) as img:
        img.draft("RGB", (side, side))
        img = ImageOps.exif_transpose(img.convert("RGB"))
    for size, resize in views:
        part = img
        if resize == "centre":
            s = min(img.size)
            left, top = (img.width - s) // 2, (img.height - s) // 2
            part = img.crop((left, top, left + s, top + s))
        part.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0).tobytes()
    return 1


def _photos(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))


def pool_rate(folder: Path, card: Path, jobs: int) -> float:
    paths, views = _photos(folder), views_of(card)
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(decode, paths[:jobs], [views] * jobs))  # workers started and warm before the clock
        start = time.perf_counter()
        done = sum(pool.map(decode, paths, [views] * len(paths), chunksize=4))
        return done / (time.perf_counter() - start)


def cost(folder: Path, card: Path, sample: int = 40) -> dict[str, float]:
    """CPU milliseconds per photo on one core (process time: what the photo costs, whatever else runs), by kind.

    Kinds are told by name: ``cam_*`` camera-like, ``up_*`` upscaled; anything else is ``other``.
    """
    views, by_kind = views_of(card), {}
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
