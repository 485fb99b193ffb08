"""Throughput and memory of ``catsort --dry-run`` against decode-only, measured in one run.

    python bench/throughput.py [--folder DIR] [--files 300] [--repeat 3] [--memory]

Prints, for phone-size JPEGs (4032x3024, quality 90, EXIF orientation) and for small ones
(500x375): decode-only files/s (the app's own loader at the model's largest input, all cores), catsort
``--dry-run`` end-to-end files/s (a fresh process: start-up and model load included), their ratio,
and peak RSS (VmHWM, Linux). ``--memory`` also sorts 1,000 and 20,000 files (hard links to the same photos, so
the disk holds only the originals) and compares peak RSS. Absolute figures swing +-40% on shared
machines; ratios within one run are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from catsort.model import ModelCard

REPO = Path(__file__).resolve().parent.parent
SORT = """
import sys
from catsort.cli import main
code = main(sys.argv[1:])
# Peak RSS of this process image only (ru_maxrss would include the parent's pages copied by fork).
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
sys.stderr.write(f"PEAK_KB {hwm.split()[1]}\\n")
sys.exit(code)
"""
DECODE_ONLY = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from catsort.images import load_image
from catsort.scan import scan
folder, size, jobs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
paths = [p for p in scan(folder) if isinstance(p, Path)]
start = time.perf_counter()
with ThreadPoolExecutor(jobs) as pool:
    for _ in pool.map(lambda p: load_image(p, size), paths):
        pass
print(len(paths) / (time.perf_counter() - start))
"""


def make_photos(folder: Path, count: int, size: tuple[int, int], quality: int) -> Path:
    """Photo-like JPEGs (smooth shapes, texture, sensor noise) with rotating EXIF orientations."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.jpg"))
    if len(existing) >= count:
        return folder
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(len(existing), count):
        rng = np.random.default_rng(i)
        channels = []
        for c in range(3):
            fx, fy, phase = rng.uniform(50, 600), rng.uniform(50, 600), rng.uniform(0, 6)
            channels.append(128 + 60 * np.sin(x / fx + phase) + 50 * np.cos(y / fy - phase * c))
        pixels = np.stack(channels, axis=-1) + rng.normal(0, 10, (h, w, 3)).astype(np.float32)
        exif = Image.Exif()
        exif[0x0112] = (1, 3, 6, 8)[i % 4]
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"IMG_{i:04d}.jpg", quality=quality, exif=exif)
    return folder


def linked_copies(source: Path, folder: Path, count: int) -> Path:
    """``count`` hard links cycling over the photos in ``source`` (the disk holds only the originals)."""
    folder.mkdir(parents=True, exist_ok=True)
    originals = sorted(source.glob("*.jpg"))
    for i in range(count):
        target = folder / f"L{i:06d}.jpg"
        if not target.exists():
            os.link(originals[i % len(originals)], target)
    return folder


def child(args: list[str]) -> tuple[str, str, float]:
    """Run ``python ARGS`` in a fresh process; return its stdout, stderr and wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO)
    if proc.returncode not in (0, 1):  # 1: some files unreadable, still a complete run
        raise SystemExit(f"python {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return proc.stdout, proc.stderr, time.perf_counter() - start


def sort_dry_run(folder: Path, jobs: int) -> tuple[int, float, float]:
    """(files, wall seconds, peak RSS MB) of one ``catsort --headless --dry-run`` process."""
    out, err, wall = child(["-c", SORT, "--headless", str(folder), "--dry-run", "--json", "-q", "--jobs", str(jobs)])
    peak_kb = int(err.rsplit("PEAK_KB", 1)[1].split()[0])
    return json.loads(out)["files"], wall, peak_kb / 1024


def measure(folder: Path, size: int, jobs: int) -> dict:
    decode = float(child(["-c", DECODE_ONLY, str(folder), str(size), str(jobs)])[0])
    files, wall, rss = sort_dry_run(folder, jobs)
    return {"files": files, "decode_fps": decode, "catsort_fps": files / wall, "ratio": files / wall / decode, "peak_rss_mb": rss}


def model_cost(folder: Path, card: ModelCard, photos: int = 64) -> float:
    """Milliseconds the model alone takes per photo on one thread (what a file costs besides decoding)."""
    from catsort.images import load_views, stack_views
    from catsort.model import Classifier

    files = sorted(folder.glob("*.jpg"))[:photos]
    inputs = stack_views([load_views(p, card.views) for p in files], card.views)
    classifier = Classifier(card, threads=1)
    classifier.logits({name: x[:8] for name, x in inputs.items()})
    start = time.perf_counter()
    for i in range(0, len(files), 8):
        classifier.logits({name: x[i : i + 8] for name, x in inputs.items()})
    return 1000 * (time.perf_counter() - start) / len(files)


def report(title: str, rows: list[dict]) -> None:
    def spread(key: str, fmt: str) -> str:
        values = [r[key] for r in rows]
        mid = statistics.median(values)
        return f"{mid:{fmt}} (range {min(values):{fmt}}-{max(values):{fmt}})" if len(values) > 1 else f"{mid:{fmt}}"

    print(f"\n{title}: {rows[0]['files']} files, {len(rows)} run(s)")
    print(f"  decode-only            {spread('decode_fps', '.1f')} files/s")
    print(f"  catsort --dry-run      {spread('catsort_fps', '.1f')} files/s")
    print(f"  ratio catsort/decode   {spread('ratio', '.2f')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, help="use these photos instead of generated phone JPEGs")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench", help="where generated photos are kept")
    parser.add_argument("--files", type=int, default=300, help="phone photos (enough that start-up and model load are a small share)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--memory", action="store_true", help="also compare peak RSS at 1,000 and 20,000 files")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from catsort.model import ModelCard, shipped_card_path

    card = ModelCard.load(shipped_card_path())
    size = max(v.size for v in card.views)
    phone = args.folder or make_photos(args.work / "phone-4032x3024", args.files, (4032, 3024), 90)
    small = make_photos(args.work / "small-500x375", max(args.files * 4, 400), (500, 375), 85)
    print(f"model inputs {', '.join(f'{v.size} px {v.resize}' for v in card.views)}, {args.jobs} decoding workers, {os.cpu_count()} cores")
    for title, folder in (("phone JPEGs" if not args.folder else str(args.folder), phone), ("small JPEGs 500x375", small)):
        rows = [measure(folder, size, args.jobs) for _ in range(args.repeat)]
        report(title, rows)
        print(f"  peak RSS (largest process)  {max(r['peak_rss_mb'] for r in rows):.0f} MB")
        print(f"  model alone, 1 thread  {model_cost(folder, card):.1f} ms/photo")
    if args.memory:
        rss = {n: sort_dry_run(linked_copies(small, args.work / f"links-{n}", n), args.jobs)[2] for n in (1_000, 20_000)}
        print(f"\nmemory: peak RSS {rss[1000]:.0f} MB at 1,000 files, {rss[20000]:.0f} MB at 20,000 files "
              f"(ratio {rss[20000] / rss[1000]:.2f})")


if __name__ == "__main__":
    main()
