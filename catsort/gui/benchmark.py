"""The window's scan against headless on the same folder, and the event loop's longest stall.

    QT_QPA_PLATFORM=offscreen python -m catsort.gui.benchmark [--photos 200] [--folder DIR] [--repeat 2] [--hold N] [--undo]

It lives in the window's package, not in ``bench/``, because it runs the window: ``bench/`` and the core
stay free of Qt.

Prints, per round: headless files/s (the core's predict, as ``--headless --dry-run`` runs it),
window files/s (open_folder -> last result shown, thumbnails included), their ratio (target
>= 0.85), the longest gap between two ticks of a 10 ms timer on the GUI thread during the scan
(target <= 100 ms), and the process's peak RSS; with ``--undo``, how long an undo of every photo takes until
the review is back, against a full scan (the rescan keeps the verdicts of photos back unchanged). Rounds alternate the order, so neither side
always runs on a warm cache. Ratios are the figures to read: absolute speeds on a shared machine
move by +-40% between runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from catsort.gui.app import throwaway_settings
from catsort.gui.window import MainWindow
from catsort.model import Classifier
from catsort.predict import predict, scan_folder


def make_photos(folder: Path, count: int, size: tuple[int, int] = (4032, 3024)) -> None:
    """Camera-like JPEGs (smooth shapes, mild noise, 12 MP at quality 90 by default), hard-linked to ``count`` files."""
    rng = np.random.default_rng(0)
    originals = []
    width, height = size
    for i in range(min(count, 8)):
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        base = np.stack([128 + 60 * np.sin(x / (300 + 40 * i) + c) * np.cos(y / (250 + 30 * c)) for c in range(3)], -1)
        pixels = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"orig_{i}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        originals.append(path)
    for i in range(count):
        (folder / f"IMG_{i:05}.jpg").hardlink_to(originals[i % len(originals)])
    for p in originals:
        p.unlink()


def headless_rate(folder: Path, classifier: Classifier) -> float:
    start = time.perf_counter()
    scan = scan_folder(folder)
    n = sum(1 for _ in predict(scan, classifier))
    return n / (time.perf_counter() - start)


def _wait_for_job(window: MainWindow) -> None:
    loop = QEventLoop()
    window.job_finished.connect(loop.quit)
    loop.exec()
    window.job_finished.disconnect(loop.quit)


def window_rate(app: QApplication, window: MainWindow, folder: Path) -> tuple[float, float]:
    window.forget_verdicts()  # each round times a scan that decodes every photo, not the reuse of the last one's
    ticks = QElapsedTimer()
    longest = [0.0]

    def tick() -> None:
        longest[0] = max(longest[0], ticks.restart() / 1000)

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    start = time.perf_counter()
    ticks.start()
    timer.start()
    window.open_folder(folder)
    _wait_for_job(window)
    timer.stop()
    return window.photos.rowCount() / (time.perf_counter() - start), longest[0]


def undo_rescan(app: QApplication, window: MainWindow, scan_seconds: float) -> None:
    """Every scanned photo moved (each overridden to cats/), then the undo timed until its review is back.
    Prints its time against ``scan_seconds``, the last full scan's. Restores the folder as it was."""
    from catsort.gui import dialogs

    dialogs.confirm_apply = lambda *args, **kwargs: True  # the benchmark is the user who says yes
    dialogs.show_summary = dialogs.show_info = lambda *args, **kwargs: None
    rows = window.photos.rowCount()
    window.photos.set_override(range(rows), "cat")
    window.apply()
    _wait_for_job(window)
    start = time.perf_counter()
    window.undo()
    while window.busy or window.state != "review":
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 20)
    took = time.perf_counter() - start
    print(f"undo of {rows} moved photos until the review is back: {took:.2f} s, "
          f"{took / scan_seconds:.3f}x the full scan's {scan_seconds:.2f} s")


def hold(app: QApplication, window: MainWindow, count: int) -> None:
    """The window holding ``count`` results: the scanned ones repeated under new names, each with its own
    copy of its thumbnail bytes; inserted in batches as a scan would, every row scrolled past, the
    threshold moved once. Prints peak RSS and the re-plan's time."""
    scanned = [window.photos.index(r).data(window.photos.PREDICTION_ROLE) for r in range(window.photos.rowCount())]
    window.photos.clear()
    batch = []
    for i in range(count):
        p = scanned[i % len(scanned)]
        thumb = p.thumbnail + bytes([i % 251]) if p.thumbnail else None  # a distinct object, as 20,000 photos would have
        batch.append(dataclasses.replace(p, path=p.path.with_name(f"IMG_{i:06}.jpg"), thumbnail=thumb))
        if len(batch) == 32:
            window.photos.add(batch)
            batch = []
            app.processEvents()
    window.photos.add(batch)
    window.threshold_slider.setValue(window.threshold_slider.default)  # back in "review" colours
    bar = window.view.verticalScrollBar()
    for value in range(0, bar.maximum() + 1, max(1, window.view.viewport().height())):
        bar.setValue(value)
        app.processEvents()
    start = time.perf_counter()
    window.photos.set_threshold(0.9)
    replan = time.perf_counter() - start
    thumbs = sum(len(window.photos.index(r).data(window.photos.PREDICTION_ROLE).thumbnail or b"") for r in range(count))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"holding {count:,} results: thumbnails {thumbs / count / 1024:.1f} KB each ({thumbs / 2**20:.0f} MB), "
          f"peak RSS {rss:.0f} MB (target < 1024), re-plan at a new threshold {replan * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--folder", type=Path, help="a folder of photos to scan instead of generated ones")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--hold", type=int, default=0, metavar="N",
                        help="then fill the window with N results (the scanned ones repeated) and report its memory")
    parser.add_argument("--size", default="4032x3024", help="generated photos' size, e.g. 640x480 for a quick 20,000-photo RSS run")
    parser.add_argument("--undo", action="store_true",
                        help="then move every photo, undo, and time the undo until the review is back (generated photos only)")
    args = parser.parse_args()
    if args.undo and args.folder:
        parser.error("--undo moves every photo (and back): only generated ones, not --folder's")
    app = QApplication(sys.argv[:1])
    with throwaway_settings():
        return _measure(app, args)


def _measure(app: QApplication, args: argparse.Namespace) -> int:
    folder = args.folder
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="catsort-gui-bench-"))
        # In a child process, so generating 12 MP arrays does not count in this process's peak RSS.
        child = multiprocessing.get_context("spawn").Process(
            target=make_photos, args=(folder, args.photos, tuple(int(v) for v in args.size.split("x"))))
        child.start()
        child.join()
    window = MainWindow()
    classifier = window.classifier  # the shipped model on one thread, as --headless runs it: one session, not two
    if classifier is None:
        raise SystemExit(f"catsort.gui.benchmark: {window.model_error}")
    window.show()
    print(f"{len(scan_folder(folder).files)} photos in {folder}")
    ratios = []
    for round_ in range(args.repeat):
        if round_ % 2 == 0:
            h = headless_rate(folder, classifier)
            w, stall = window_rate(app, window, folder)
        else:
            w, stall = window_rate(app, window, folder)
            h = headless_rate(folder, classifier)
        ratios.append(w / h)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"round {round_ + 1}: headless {h:.1f} files/s, window {w:.1f} files/s, ratio {w / h:.2f} (target >= 0.85), "
              f"longest event-loop stall {stall * 1000:.0f} ms (target <= 100), peak RSS {rss:.0f} MB")
    print(f"ratio window/headless: median {sorted(ratios)[len(ratios) // 2]:.2f}, range {min(ratios):.2f}-{max(ratios):.2f}")
    if args.undo:
        undo_rescan(app, window, window.photos.rowCount() / w)
    if args.hold:
        hold(app, window, args.hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
