"""``catsort-gui --self-test``: the packaged app checks itself end to end, on any OS.

Builds the window, scans the sample photos shipped with the app through the window's own
worker thread and model, and compares each verdict and its probabilities with those recorded
for this model (``assets/samples/expected.json``, written by ``packaging/record_samples.py``).
A bundle that lost a Qt plugin, the HEIC decoder or the model fails here, with one line a file.
"""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QEventLoop, QTimer

from catsort.gui.window import MainWindow
from catsort.model import shipped_card_path

TIMEOUT_MS = 120_000


def run_self_test(window: MainWindow) -> int:
    samples = shipped_card_path().parent / "samples"
    try:
        expected = json.loads((samples / "expected.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"self-test: FAIL cannot read {samples / 'expected.json'}: {exc}", file=sys.stderr)
        return 1
    if window.card is None:
        print(f"self-test: FAIL {window.model_error}", file=sys.stderr)
        return 1
    if expected.get("model_sha256") != window.card.onnx_sha256:
        print(f"self-test: FAIL the samples were recorded for another model ({str(expected.get('model_sha256'))[:12]}…, "
              f"this one is {window.card.onnx_sha256[:12]}…): run packaging/record_samples.py", file=sys.stderr)
        return 1
    window.show()  # on xcb or wayland this is what proves the platform plugin and its libraries load
    loop = QEventLoop()
    window.job_finished.connect(lambda *_: loop.quit())
    QTimer.singleShot(TIMEOUT_MS, loop.quit)
    window.open_folder(samples)
    loop.exec()
    got = {p.path.name: p for p in (window.photos.index(r).data(window.photos.PREDICTION_ROLE) for r in range(window.photos.rowCount()))}
    tolerance = float(expected.get("tolerance", 0.02))
    failures = 0
    for name, want in sorted(expected["samples"].items()):
        p = got.get(name)
        if p is None or p.probabilities is None:
            print(f"self-test: FAIL {name}: {'not scanned' if p is None else p.error}", file=sys.stderr)
            failures += 1
            continue
        verdict = window.card.labels[max(range(len(p.probabilities)), key=p.probabilities.__getitem__)]
        worst = max(abs(a - b) for a, b in zip(p.probabilities, want["probabilities"], strict=True))
        ok = verdict == want["verdict"] and worst <= tolerance
        failures += not ok
        shown = ", ".join(f"{label} {v:.3f}" for label, v in zip(window.card.labels, p.probabilities, strict=True))
        print(f"self-test: {'ok  ' if ok else 'FAIL'} {name}: {verdict} ({shown}; largest difference {worst:.4f})")
    print(f"self-test: {'passed' if failures == 0 else f'{failures} failed'} on {window.card.identity}")
    window.close()  # waits for the scan's thread to end: the process must not exit under a running QThread
    return 0 if failures == 0 else 1
