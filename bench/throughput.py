"""How fast ``catsort --headless`` sorts, against the limits it could reach, measured in one run.

    python bench/throughput.py [--files 400] [--repeat 3] [--jobs N] [--memory] [--against DIR] [--folder DIR]

The photo set is 12 MP (4032x3024) JPEGs whose decode cost matches real camera JPEGs, half of them
EXIF-rotated: half "camera-like" (a real photo from ``shared/data/real`` upscaled, with the fine grain
of a phone sensor, quality 92, about 2.6 MB, the size of a phone's 12 MP JPEG) and half "upscaled"
(the same without grain, quality 90, about 1 MB). Calibrated against issue 16's measurement on this
kind of machine: decoding a real 12 MP camera JPEG to the model's size costs ~39 ms of one core, an
upscaled photo ~24 ms; the bench prints what its own set costs (CPU time, so a busy machine inflates
it less than wall time), every run.

Printed, each a median over ``--repeat`` interleaved runs with its range:
- decode-only limit: files/s of a process pool, one process per core, doing only what the model needs
  (``bench/decode_limit.py``: draft, EXIF transpose, one resize per view);
- decode CPU ms and model CPU ms per photo (one core, the card's model at batch 8, one thread), and the
  pipeline's own limit ``cores / (decode ms + model ms)``;
- ``catsort --headless --dry-run`` end to end in a fresh process (start-up and model load included),
  its ratio to the decode-only limit and its efficiency against the pipeline's limit; with
  ``--against DIR`` the same for another checkout (``git archive REV catsort | tar -x -C DIR`` and
  ``ln -s $PWD/assets DIR/assets``), run interleaved, and the ratio between the two;
- start-up: ``python -m catsort --headless --dry-run -q`` as a user runs it, in fresh processes, on a folder
  of one small photo (interpreter, imports, model load, one verdict, exit) and on an empty folder, wall
  and CPU seconds (CPU is what a busy machine inflates least); the time from spawning an interpreter to
  a ready session of the shipped model; and one run with an empty optimised-graph cache (the bench keeps
  its own cache in ``--work``/cache);
- the CPU's int8 instruction set (the model's cost depends on it: ~12 ms with VNNI, ~27 ms with AVX2 only).

``--memory`` also sorts 1,000 and 20,000 files (hard links to small photos, so the disk holds only the
originals) and compares peak RSS. The machine may be shared: only ratios within one run mean anything.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED_REAL = Path(os.environ.get("CATSORT_SHARED_DATA", REPO.parent / "shared" / "data")) / "real"
SORT = """
import sys
from catsort.cli import main
code = main(sys.argv[1:])
# Peak RSS of this process image only (ru_maxrss would include the parent's pages copied by fork).
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
sys.stderr.write(f"PEAK_KB {hwm.split()[1]}\\n")
sys.exit(code)
"""
MODEL_COST = """
import json, sys, time
from pathlib import Path
from catsort.images import load_views, stack_views
from catsort.model import Classifier, ModelCard
card = ModelCard.load(Path(sys.argv[1]))
files = sorted(p for p in Path(sys.argv[2]).iterdir() if p.suffix == ".jpg")[:32]
classifier = Classifier(card, threads=1)
# A checkout from before the second look (--against) has neither decoded_views nor looked_logits.
photos = [load_views(p, getattr(card, "decoded_views", card.views)) for p in files]
run = getattr(classifier, "looked_logits", None) or (lambda batch: classifier.logits(stack_views(batch, card.views)))
run(photos[:8])
best = []
for _ in range(3):
    start = time.process_time()
    for i in range(0, len(files), 8):
        run(photos[i : i + 8])
    best.append(1000 * (time.process_time() - start) / len(files))
print(json.dumps(sorted(best)[1]))
"""
SESSION_READY = """
import time
from catsort.model import Classifier, ModelCard, shipped_card_path
Classifier(ModelCard.load(shipped_card_path()), threads=1)
print(time.time())
"""
STARTUP_RUNS = 7
WIDTH, HEIGHT = 4032, 3024
GRAIN = 2.3
"""Sensor grain of the camera-like half (grey levels, luminance; a third of it in colour). Chosen so that, in
one run, these photos cost 1.6x the upscaled ones to decode, as issue 16 measured for real 12 MP camera
JPEGs (~39 ms) against upscaled photos (~24 ms): 3.0 gave 2.0x (50 vs 25 ms)."""
SET_NAME = f"12mp-{WIDTH}x{HEIGHT}-grain{GRAIN}"
ORIENTATIONS = (1, 6, 1, 8)
"""Half upright, half turned (6 and 8: portrait photos, the common case of a rotated phone)."""


def int8_isa() -> str:
    """The CPU's int8 dot-product instructions, from /proc/cpuinfo (what the quantised model runs on)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown (no /proc/cpuinfo)"
    found = [f for f in ("avx512_vnni", "avx_vnni", "avx512f", "avx2") if f in flags]
    vnni = "VNNI" if any("vnni" in f for f in found) else "no VNNI"
    return f"{' '.join(found) or 'no avx2'} ({vnni})"


def _sources() -> list[Path]:
    if not SHARED_REAL.is_dir():
        return []
    return sorted(p for kind in ("cat", "dog") for p in (SHARED_REAL / kind).glob("*.jpg"))


def _make_one(args: tuple[Path, int, Path | None]) -> None:
    target, i, source = args
    rng = np.random.default_rng(i)
    if source is not None:
        with Image.open(source) as img:
            small = img.convert("RGB")
    else:  # no shared data (a user's clone): a smooth synthetic scene instead
        y, x = np.mgrid[0:300, 0:400].astype(np.float32)
        small = Image.fromarray(np.stack([128 + 80 * np.sin(x / rng.uniform(9, 60) + c) for c in range(3)], -1).astype(np.uint8))
    camera = (i // 2) % 2 == 1
    big = small.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    if camera:  # a phone sensor's fine grain, luminance mostly, after its own denoising
        # One 1009x757 tile of grain repeated: JPEG codes each 8x8 block alone, so it costs the decoder as much
        # as fresh noise everywhere, and the set is made in a fraction of the time.
        tile = rng.normal(0, GRAIN, (757, 1009, 1)) + rng.normal(0, GRAIN / 3, (757, 1009, 3))
        grain = np.tile(tile.astype(np.float32), (HEIGHT // 757 + 1, WIDTH // 1009 + 1, 1))[:HEIGHT, :WIDTH]
        big = Image.fromarray(np.clip(np.asarray(big, dtype=np.float32) + grain, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = ORIENTATIONS[i % 4]
    exif[0x010F] = "bench"
    tmp = target.with_suffix(".part")
    big.save(tmp, "JPEG", quality=92 if camera else 90, subsampling=2, exif=exif)
    tmp.rename(target)


def make_photos(folder: Path, count: int) -> Path:
    """``count`` 12 MP JPEGs, alternating upscaled / camera-like in pairs (``up_*``, ``cam_*``); kept for later runs."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = _sources()
    todo = []
    for i in range(count):
        kind = "cam" if (i // 2) % 2 else "up"
        target = folder / f"{kind}_{i:04d}.jpg"
        if not target.exists():
            todo.append((target, i, sources[(i * 7919) % len(sources)] if sources else None))
    if todo:
        print(f"making {len(todo)} photos of {WIDTH}x{HEIGHT} in {folder} (once) ...", flush=True)
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(_make_one, todo, chunksize=4))
    return folder


def make_small(folder: Path, count: int) -> Path:
    """Small (500x375) JPEGs for the memory comparison."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        target = folder / f"S{i:04d}.jpg"
        if not target.exists():
            rng = np.random.default_rng(i)
            pixels = rng.normal(128, 40, (375, 500, 3)).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(target, quality=85)
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


class ChildRun(NamedTuple):
    """One finished child process: its output, wall seconds, and what it cost and had."""

    stdout: str
    stderr: str
    wall: float
    cpu: float
    """CPU seconds (user + system, all threads): what it cost, however busy the machine was."""
    cores_left: float
    """Cores it had to itself on average: all of them less what every other process used meanwhile
    (the machine's busy time in /proc/stat, less the child's own CPU)."""


def _machine_busy_seconds() -> float:
    """CPU seconds every process of the machine has used since boot (/proc/stat), NaN where there is none."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def child(args: list[str], cwd: Path = REPO, env_extra: dict[str, str] | None = None) -> ChildRun:
    """Run ``python ARGS`` in a fresh process (importing catsort from ``cwd``)."""
    env = {**os.environ, "PYTHONPATH": str(cwd), **(env_extra or {})}
    before, busy = resource.getrusage(resource.RUSAGE_CHILDREN), _machine_busy_seconds()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env)
    wall = time.perf_counter() - start
    after, busy = resource.getrusage(resource.RUSAGE_CHILDREN), _machine_busy_seconds() - busy
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cores = os.cpu_count() or 1
    if proc.returncode not in (0, 1):  # 1: some files unreadable, still a complete run
        raise SystemExit(f"python {' '.join(args)[:200]} failed ({proc.returncode}): {proc.stderr[-800:]}")
    return ChildRun(proc.stdout, proc.stderr, wall, cpu, min(cores, max(0.0, cores - max(0.0, busy - cpu) / wall)))


def sort_dry_run(folder: Path, jobs: int | None, cwd: Path = REPO, extra: tuple[str, ...] = ()) -> tuple[int, float, ChildRun]:
    """(files, peak RSS MB, the process) of one ``catsort --headless --dry-run``."""
    jobs_args = ["--jobs", str(jobs)] if jobs else []
    run = child(["-c", SORT, "--headless", str(folder), "--dry-run", "--json", "-q", *jobs_args, *extra], cwd)
    peak_kb = int(run.stderr.rsplit("PEAK_KB", 1)[1].split()[0])
    return json.loads(run.stdout)["files"], peak_kb / 1024, run


def startup(folder: Path, cwd: Path = REPO, env_extra: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of ``python -m catsort --headless --dry-run -q FOLDER`` in a fresh process, as a user
    runs it: interpreter, imports, model load, the verdicts, exit."""
    run = child(["-m", "catsort", "--headless", str(folder), "--dry-run", "-q"], cwd, env_extra)
    return run.wall, run.cpu


def session_ready(cwd: Path = REPO) -> float:
    """Seconds from spawning a fresh interpreter to a ready onnxruntime session of the shipped model (imports,
    sha256 check, cached graph or optimisation), loaded in the main thread with nothing else to do, with
    the one thread OpenBLAS gets under the CLI."""
    spawned = time.time()
    return float(child(["-c", SESSION_READY], cwd, {"OPENBLAS_NUM_THREADS": "1"}).stdout) - spawned


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def spread(values: list[float], fmt: str) -> str:
    mid = statistics.median(values)
    return f"{mid:{fmt}} (range {min(values):{fmt}}-{max(values):{fmt}})" if len(values) > 1 else f"{mid:{fmt}}"


def report_startup(versions: dict[str, Path]) -> None:
    """Start-up, fresh processes of every version interleaved: one photo, an empty folder, a ready session."""
    with tempfile.TemporaryDirectory() as tmp:
        one, empty = Path(tmp) / "one", Path(tmp) / "empty"
        one.mkdir()
        empty.mkdir()
        Image.new("RGB", (64, 48), (200, 40, 40)).save(one / "one.jpg")
        cold = startup(one, REPO, {"CATSORT_CACHE_DIR": str(Path(tmp) / "cold-cache")})[0]  # optimises and writes the cache
        starts: dict[str, dict[str, list[float]]] = {name: {} for name in versions}
        print(f"\nstart-up, {STARTUP_RUNS} fresh processes each, interleaved (load average {loadavg():.1f}):", flush=True)
        for _ in range(STARTUP_RUNS):
            for name, cwd in versions.items():
                row = starts[name]
                for label, folder in (("one", one), ("empty", empty)):
                    wall, cpu = startup(folder, cwd)
                    row.setdefault(label, []).append(wall)
                    row.setdefault(f"{label} cpu", []).append(cpu)
                row.setdefault("session", []).append(session_ready(cwd))
        for name, row in starts.items():
            print(f"  catsort --headless --dry-run, one photo ({name}):  {spread(row['one'], '.3f')} s wall, "
                  f"{spread(row['one cpu'], '.3f')} s CPU")
            print(f"  catsort --headless --dry-run, empty folder ({name}): {spread(row['empty'], '.3f')} s wall, "
                  f"{spread(row['empty cpu'], '.3f')} s CPU")
            print(f"  spawn to a ready session of the shipped model ({name}): {spread(row['session'], '.3f')} s")
        print(f"  one photo with an empty cache (optimises and writes it, once): {cold:.3f} s; load average now {loadavg():.1f}")


def report_throughput(args: argparse.Namespace, versions: dict[str, Path], card_path: Path, cores: int) -> None:
    """The 12 MP dry run of every version against the decode-only process pool, in interleaved runs."""
    phone = args.folder or make_photos(args.work / SET_NAME, args.files)
    decode_script = str(REPO / "bench" / "decode_limit.py")
    costs = [json.loads(child([decode_script, "--cost", str(phone), str(card_path)]).stdout) for _ in range(args.repeat)]
    model_ms = [json.loads(child(["-c", MODEL_COST, str(card_path), str(phone)]).stdout) for _ in range(args.repeat)]
    decode_ms = [c["all"] for c in costs]
    print(f"\n{phone}: decode CPU ms per photo, one core (draft, EXIF transpose, resize per view):")
    for kind in sorted(costs[0]):
        label = {"cam": "camera-like (issue 16: real 12 MP camera JPEGs ~39 ms)", "up": "upscaled (issue 16: ~24 ms)",
                 "all": "the whole set"}.get(kind, kind)
        print(f"  {label:58} {spread([c[kind] for c in costs], '.1f')} ms")
    print(f"  model CPU ms per photo (1 thread, batch 8)                 {spread(model_ms, '.1f')} ms")
    limit = [cores / ((d + m) / 1000) for d, m in zip(decode_ms, model_ms, strict=True)]
    print(f"  pipeline limit cores/(decode+model)                        {spread(limit, '.1f')} files/s")
    rows: dict[str, list[dict]] = {name: [] for name in versions}
    decode_fps, decode_left = [], []
    for r in range(args.repeat):
        pool_run = child([decode_script, str(phone), str(card_path), str(cores)])
        decode_fps.append(float(pool_run.stdout))
        decode_left.append(pool_run.cores_left)
        for name, cwd in versions.items():
            files, rss, run = sort_dry_run(phone, args.jobs, cwd)
            rows[name].append({"files": files, "fps": files / run.wall, "rss": rss, "load": loadavg(), "left": run.cores_left,
                               "cpu_ms": 1000 * run.cpu / files, "busy": run.cpu / run.wall / cores})
        print(f"  run {r + 1}: decode-only {decode_fps[-1]:.1f} files/s ({decode_left[-1]:.2f} cores left by others), "
              + ", ".join(f"{n} {rows[n][-1]['fps']:.1f} files/s ({rows[n][-1]['left']:.2f})" for n in versions)
              + f" (load {loadavg():.1f})", flush=True)
    print(f"\n{rows['this'][0]['files']} photos, {args.repeat} interleaved run(s), median (range):")
    print(f"  decode-only limit (process pool, {cores} processes)      {spread(decode_fps, '.1f')} files/s")
    # Cores the pool really got on a shared machine: its rate times what a photo costs one core.
    got = [f * d / 1000 for f, d in zip(decode_fps, decode_ms, strict=True)]
    print(f"  cores the decode pool got (rate x decode CPU ms)           {spread(got, '.2f')} of {cores}")
    for name in versions:
        fps = [row["fps"] for row in rows[name]]
        print(f"  catsort --headless --dry-run ({name})  {spread(fps, '.1f')} files/s, peak RSS "
              f"{max(row['rss'] for row in rows[name]):.0f} MB")
        print(f"    ratio to decode-only              {spread([f / d for f, d in zip(fps, decode_fps, strict=True)], '.2f')}")
        # The same limit with the cores the decode pool really got (the machine may be shared).
        fair = [f / (g / ((d + m) / 1000)) for f, g, d, m in zip(fps, got, decode_ms, model_ms, strict=True)]
        print(f"    efficiency vs pipeline limit      {spread([f / lim for f, lim in zip(fps, limit, strict=True)], '.2f')}"
              f"   (with the cores the pool got: {spread(fair, '.2f')})")
        # Robust to a shared machine: the CPU a photo cost catsort, against decode + model on one core.
        cpu = [row["cpu_ms"] for row in rows[name]]
        work = [d + m for d, m in zip(decode_ms, model_ms, strict=True)]
        print(f"    CPU ms per photo                  {spread(cpu, '.1f')} (decode+model {spread(work, '.1f')}):"
              f" CPU efficiency {spread([(d + m) / c for d, m, c in zip(decode_ms, model_ms, cpu, strict=True)], '.2f')},"
              f" cores kept busy {spread([row['busy'] * cores for row in rows[name]], '.2f')} of {cores}")
        # Each rate per core the other processes left it (from /proc/stat, measured around each process):
        # on a shared machine the decode pool and catsort rarely meet the same load, run for run. A run that
        # had every core shows whether catsort uses them all; one that had fewer is extrapolated.
        left = [row["left"] for row in rows[name]]
        scaled = [f * cores / max(lc, 0.1) for f, lc in zip(fps, left, strict=True)]
        decode_scaled = [f * cores / max(ld, 0.1) for f, ld in zip(decode_fps, decode_left, strict=True)]
        print(f"    per core left by others (cores left {spread(left, '.2f')}; decode pool {spread(decode_left, '.2f')}):"
              f" efficiency vs pipeline limit {spread([f / lim for f, lim in zip(scaled, limit, strict=True)], '.2f')},"
              f" ratio to decode-only {spread([c / d for c, d in zip(scaled, decode_scaled, strict=True)], '.2f')}")
    if args.against:
        ratio = [a["fps"] / b["fps"] for a, b in zip(rows["this"], rows["against"], strict=True)]
        print(f"  this / against, run by run          {spread(ratio, '.2f')}")


def report_memory(args: argparse.Namespace) -> None:
    """Peak RSS at 1,000 and 20,000 files (hard links of small photos): memory must not grow with the folder."""
    small = make_small(args.work / "small-500x375", 400)
    rss = {n: sort_dry_run(linked_copies(small, args.work / f"links-{n}", n), args.jobs)[1] for n in (1_000, 20_000)}
    print(f"\nmemory: peak RSS {rss[1000]:.0f} MB at 1,000 files, {rss[20000]:.0f} MB at 20,000 files "
          f"(ratio {rss[20000] / rss[1000]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, help="use these photos instead of the generated 12 MP set")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench", help="where generated photos are kept")
    parser.add_argument("--files", type=int, default=400, help="12 MP photos (enough that start-up and model load are a small share)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="catsort --jobs (default: catsort's own default)")
    parser.add_argument("--against", type=Path, help="another checkout of catsort to run interleaved (before/after)")
    parser.add_argument("--memory", action="store_true", help="also compare peak RSS at 1,000 and 20,000 files")
    parser.add_argument("--skip-throughput", action="store_true", help="only start-up (and --memory)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from catsort.model import ModelCard, shipped_card_path

    card_path = shipped_card_path()
    card = ModelCard.load(card_path)
    cores = os.cpu_count() or 1
    look = f"; second look {card.second_look.view.size} px {card.second_look.view.resize} below {card.second_look.below}" if card.second_look else ""
    print(f"model {card.identity}: inputs {', '.join(f'{v.size} px {v.resize}' for v in card.views)}{look}")
    print(f"cpu: {cores} cores, int8 {int8_isa()}; load average at start {loadavg():.1f}")
    versions = {"this": REPO, **({"against": args.against.resolve()} if args.against else {})}
    for cwd in versions.values():
        # Installed and frozen copies carry their bytecode; a checkout under PYTHONDONTWRITEBYTECODE=1 would
        # compile every module at every start and charge it to start-up.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(cwd / "catsort")], check=True)

    # The optimised-graph cache of catsort.model: one of the bench's own, so runs are alike and the user's is left alone.
    cache = args.work / "cache"
    os.environ["CATSORT_CACHE_DIR"] = str(cache)
    report_startup(versions)
    if not args.skip_throughput:
        report_throughput(args, versions, card_path, cores)
    if args.memory:
        report_memory(args)


if __name__ == "__main__":
    main()
