"""Save the window's screenshots (empty, scanning, review, confirmation, after apply) to docs/screenshots/.

    pip install scikit-image   # the sample photos; not a dependency of the app or its tests
    QT_QPA_PLATFORM=offscreen python docs/make_screenshots.py

The photos shown are scikit-image's bundled sample photos (public domain / CC0, see
docs/CREDITS.md) and crops of them, never the training or validation data. The run is real:
the shipped model, the real scan, the real apply in a temporary folder.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication
from skimage import data

from catsort.gui import dialogs
from catsort.gui.window import MainWindow

OUT = Path(__file__).resolve().parent / "screenshots"
PHOTOS = ["chelsea", "astronaut", "coffee", "rocket", "hubble_deep_field", "retina", "camera", "coins",
          "brick", "grass", "immunohistochemistry"]  # licences: docs/CREDITS.md


def make_album(folder: Path) -> None:
    for name in PHOTOS:
        img = Image.fromarray(getattr(data, name)()).convert("RGB")
        img.save(folder / f"{name}.jpg", quality=88)
    cat = Image.fromarray(data.chelsea())
    w, h = cat.size
    crops = {"chelsea_face": (80, 0, 330, 250), "chelsea_left": (0, 0, w * 2 // 3, h), "chelsea_wide": (0, 40, w, h - 20)}
    for name, box in crops.items():
        cat.crop(box).save(folder / f"{name}.jpg", quality=88)
    ImageOps.mirror(cat).save(folder / "chelsea_mirrored.jpg", quality=88)
    ImageOps.grayscale(cat).save(folder / "chelsea_grey.jpg", quality=88)
    (folder / "IMG_0042.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short by a card reader")


def wait(app: QApplication, window: MainWindow) -> None:
    """Until the window's job is done (an event loop, not a processEvents() spin: PySide6 6.12 leaks a
    reference to None on each call, and a spin of millions of calls crashes the interpreter)."""
    if window._job is not None:
        loop = QEventLoop()
        window.job_finished.connect(loop.quit)
        loop.exec()


def main() -> int:
    app = QApplication(sys.argv[:1])
    settings = Path(tempfile.mkdtemp())
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(settings))
    app.setOrganizationName("catsort-screenshots")
    OUT.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp()) / "Pictures"
    folder.mkdir()
    make_album(folder)
    window = MainWindow()
    window.resize(1000, 700)
    window.show()
    app.processEvents()
    window.grab().save(str(OUT / "1-empty.png"))
    shot = {"taken": False}

    def scanning(*_: object) -> None:
        if not shot["taken"]:  # once the batch's progress is shown too
            shot["taken"] = True
            QTimer.singleShot(0, lambda: window.grab().save(str(OUT / "2-scanning.png")))

    window.photos.rowsInserted.connect(scanning)
    window.open_folder(folder)
    wait(app, window)
    window.view.setCurrentIndex(window.filter.index(2, 0))
    app.processEvents()
    window.grab().save(str(OUT / "3-review.png"))
    box, _ = dialogs.confirm_box(window, window.photos.decisions(), False, folder)
    box.show()
    app.processEvents()
    box.grab().save(str(OUT / "4-confirm.png"))
    box.close()
    records: list = []
    dialogs.confirm_apply = lambda *a: True
    dialogs.show_summary = lambda parent, f, recs, copy, cancelled, reason="": records.extend(recs)
    window.apply()
    wait(app, window)
    box, _ = dialogs.summary_box(window, folder, records, False, False)
    box.show()
    app.processEvents()
    box.grab().save(str(OUT / "5-summary.png"))
    window.grab().save(str(OUT / "6-after-apply.png"))
    print(f"saved {len(list(OUT.glob('*.png')))} screenshots to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
