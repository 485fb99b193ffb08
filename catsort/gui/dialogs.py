"""The window's dialogs: confirm an apply, its summary, errors, the model card, a large preview.

Each is a function that builds, shows and returns; tests patch these functions (never leave a
dialog blocking), so the window's own code stays the code that runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from PySide6.QtCore import QObject, Qt, QThreadPool, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from catsort.apply import Record
from catsort.gui.photos import OVERRIDE_CHOICES, shown
from catsort.images import ImageError, open_image
from catsort.model import ModelCard
from catsort.plan import Decision, Override


def plural(count: int, word: str, words: str | None = None) -> str:
    """"1 photo", "2 photos", "1,204 photos" ("copy" takes its own plural: ``words="copies"``)."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"


class Verb(NamedTuple):
    """The action's words in one mode (move or copy): the button, its confirmation, its summary and the status
    line all name it with these, never with a word of their own."""

    name: str
    past: str
    doing: str
    undo: str
    """What "Undo last sort" does to this mode's run: a copy's originals never moved, so its undo removes the copies."""


MOVE = Verb("Move", "Moved", "Moving", "puts every photo back")
COPY = Verb("Copy", "Copied", "Copying", "removes the copies")


def verb(copy: bool) -> Verb:
    return COPY if copy else MOVE


def staying(count: int) -> str:
    """"1 stays where it is", "1,204 stay where they are": the verb and pronoun agree with the count."""
    return f"{count:,} {'stays where it is' if count == 1 else 'stay where they are'}"


def plan_sentence(decisions: list[Decision], copy: bool) -> str:
    """Exactly what an apply will do: "Move 812 photos: 530 to cats/, 282 to dogs/; 1,204 stay where they are."
    (no "0 stay" clause when every photo goes)."""
    moving = Counter(d.folder for d in decisions if d.folder)
    stay = sum(1 for d in decisions if d.folder is None)
    parts = ", ".join(f"{moving[f]:,} to {f}/" for f in ("cats", "dogs") if moving[f])
    rest = f"; {staying(stay)}" if stay else ""
    return f"{verb(copy).name} {plural(sum(moving.values()), 'photo')}: {parts}{rest}."


CAPTION_NAME_CHARS = 80


def breakable(path: Path) -> str:
    """``path`` as a dialog shows it: a zero-width space after each "/" lets a long path wrap there (a message box
    breaks lines only between words, and cut a 229-character path off at its edge)."""
    return shown(path).replace("/", "/\u200b")


def confirm_box(parent: QWidget, decisions: list[Decision], copy: bool, folder: Path,
                unscanned: int = 0) -> tuple[QMessageBox, QPushButton]:
    """The confirmation; ``unscanned`` photos were not looked at by a stopped scan, and it says so."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(f"{verb(copy).name} these photos?")
    box.setText(plan_sentence(decisions, copy))
    were = "was not looked at and stays where it is" if unscanned == 1 else "were not looked at and stay where they are"
    skipped = f"The scan was stopped: the other {plural(unscanned, 'photo')} {were}. " if unscanned else ""
    box.setInformativeText(f"{skipped}In {breakable(folder)}. Nothing is overwritten, and “Undo last sort” {verb(copy).undo}.")
    go = box.addButton(verb(copy).name, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(go)
    return box, go


def confirm_apply(parent: QWidget, decisions: list[Decision], copy: bool, folder: Path, unscanned: int = 0) -> bool:
    box, go = confirm_box(parent, decisions, copy, folder, unscanned)
    box.exec()
    return box.clickedButton() is go


def _done(records: list[Record]) -> Counter[str]:
    """Photos an apply moved or copied, per output folder."""
    return Counter(Path(r.destination).parent.name for r in records if r.destination and r.action in ("move", "copy"))


def done_sentence(records: list[Record], copy: bool, cancelled: bool) -> str:
    """What an apply did, in one sentence: the summary's first line, and the status line's after it."""
    done, words = _done(records), verb(copy)
    moved = done["cats"] + done["dogs"]
    if done["cats"] and done["dogs"]:
        head = f"{words.past} {plural(moved, 'photo')}: {done['cats']:,} to cats/ and {done['dogs']:,} to dogs/."
    elif moved:
        head = f"{words.past} {plural(moved, 'photo')} to {'cats' if done['cats'] else 'dogs'}/."
    else:
        head = f"No photo was {words.past.lower()}."
    return head + (" Stopped before the end: the rest stay where they are." if cancelled else "")


def failed_sentence(records: list[Record], copy: bool) -> str:
    """How many photos an apply could not move or copy, without a full stop ("" if none)."""
    failed = sum(1 for r in records if r.action == "error")
    return f"{plural(failed, 'photo')} could not be {verb(copy).past.lower()}" if failed else ""


def summary_box(parent: QWidget, folder: Path, records: list[Record], copy: bool,
                cancelled: bool, reason: str = "") -> tuple[QMessageBox, dict[QPushButton, Path]]:
    """What the apply did, why it stopped (``reason``: the error that ended it part way), the failures with their
    reasons, and buttons to open the output folders."""
    done = _done(records)
    failed = [r for r in records if r.action == "error"]
    words = verb(copy)
    box = QMessageBox(parent)
    moved = done["cats"] + done["dogs"]
    box.setWindowTitle(f"{words.doing} stopped" if cancelled else words.past if moved else f"Nothing was {words.past.lower()}")
    box.setIcon(QMessageBox.Icon.Warning if failed or cancelled else QMessageBox.Icon.Information)
    box.setText(done_sentence(records, copy, cancelled))
    undo = f"“Undo last sort” {words.undo}, now or after you close catsort."
    info = " ".join(([failed_sentence(records, copy) + " (details below)."] if failed else []) + ([undo] if moved else []))
    info = "\n\n".join(part for part in (reason, info) if part)  # why it stopped, a paragraph of its own
    if failed:
        box.setDetailedText("\n".join(f"{Path(r.path).name}: {r.error}" for r in failed))
    box.setInformativeText(info)
    buttons = {}
    for sub in ("cats", "dogs"):
        if done[sub]:
            buttons[box.addButton(f"Open {sub}/", QMessageBox.ButtonRole.ActionRole)] = folder / sub
    close = box.addButton(QMessageBox.StandardButton.Close)
    # Enter and Esc dismiss it: opening a file manager is an extra the user asks for, never what a keypress does.
    box.setDefaultButton(close)
    box.setEscapeButton(close)
    return box, buttons


def show_summary(parent: QWidget, folder: Path, records: list[Record], copy: bool, cancelled: bool, reason: str = "") -> None:
    box, buttons = summary_box(parent, folder, records, copy, cancelled, reason)
    box.exec()
    target = buttons.get(box.clickedButton())
    if target is not None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(target)))


def output_folder_box(parent: QWidget, line: str, may_open_anyway: bool) -> tuple[QMessageBox, dict[QPushButton, str]]:
    """The question asked when the folder chosen is catsort's own cats/ or dogs/: open its parent instead (the
    default), open it anyway (only when nothing says catsort made it), or nothing. Buttons -> "parent" | "anyway"."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("This is an output folder")
    box.setText(line)
    choices = {box.addButton("Open the parent folder", QMessageBox.ButtonRole.AcceptRole): "parent"}
    if may_open_anyway:
        choices[box.addButton("Open this folder anyway", QMessageBox.ButtonRole.DestructiveRole)] = "anyway"
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(next(iter(choices)))
    return box, choices


def ask_output_folder(parent: QWidget, line: str, may_open_anyway: bool) -> str | None:
    box, choices = output_folder_box(parent, line, may_open_anyway)
    box.exec()
    return choices.get(box.clickedButton())


def show_error(parent: QWidget, title: str, message: str) -> None:
    QMessageBox.critical(parent, title, message)


def show_info(parent: QWidget, title: str, message: str) -> None:
    QMessageBox.information(parent, title, message)


TRAINING_SPLITS = {"train": "small pet photos and other pictures", "realtrain_train": "real photos of pets and look-alikes"}
"""The card's splits the network learnt from, in words (``training_data.splits``)."""

RESIZES = {"centre": "the middle of each photo", "squash": "each whole photo, squeezed square"}
"""A view's ``resize`` (see :func:`catsort.images.to_model_input`), in words."""

SCORED_ON = (
    (("cross_fitted", "real"), "real photos"),
    (("cross_fitted", "realtrain_heldout"), "real photos with look-alikes (rabbits, foxes, bears, teddy bears)"),
    (("petimages_other_test_split", "at_default_threshold"), "small photos (the PetImages test set and other pictures)"),
)
"""Where the card's ``metrics`` keep each score at the default threshold on photos the model never learnt from,
and those photos in words. Each level of a path adds its figures (the test split's size, then its rates)."""


def _percent(share: float) -> str:
    """"95.0%", "96.0%" (0.9596), "99.75%": as README's model table writes the same scores, so the two never
    disagree: to the nearest tenth, or exact when the figure has two decimals (399 of 400 is 99.75%)."""
    hundredths = share * 10_000
    exact = abs(hundredths - round(hundredths)) < 1e-6 and round(hundredths) % 10 != 0
    return f"{share:.2%}" if exact else f"{share:.1%}"


def _figures(metrics: dict, path: tuple[str, ...]) -> dict:
    """The figures along ``path`` in the card's metrics, deeper ones winning ({} if it is not there)."""
    figures: dict = {}
    node: object = metrics
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return {}
        figures |= {k: v for k, v in node.items() if isinstance(v, int | float)}
    return figures


def score_sentence(figures: dict, photos: str) -> str | None:
    """One score in plain words, from the card's figures, or None if the card lacks one of them."""
    if not {"files", "pets_to_right_folder", "other_kept", "moved", "moved_wrong"} <= figures.keys():
        return None
    return (f"On {figures['files']:,} {photos}: {_percent(figures['pets_to_right_folder'])} of the cats and dogs went to the right "
            f"folder and {_percent(figures['other_kept'])} of the other photos stayed where they were; "
            f"{figures['moved_wrong']:,} of the {plural(figures['moved'], 'photo')} it moved went to the wrong folder.")


def model_card_text(card: ModelCard) -> str:
    """The About box's account of the model: what it is, what it learnt from, how well it sorts, in words a
    user reads (the card's own terms, cross-fitting and bounds, are for train/README.md)."""
    raw = card.raw
    lines = [f"Model: {card.identity}", f"Moves a photo when at least {card.threshold:.1%} sure by default (the slider's Default)"]
    look = card.second_look
    lines.append("Looks at: " + ", ".join(f"{RESIZES.get(v.resize, v.resize)} at {v.size} px" for v in card.views)
                 + (f"; again at {look.view.size} px {look.when()}" if look else ""))
    splits = raw.get("training_data", {}).get("splits") if isinstance(raw.get("training_data"), dict) else None
    if isinstance(splits, dict):  # the training splits only: the others were held out to choose and to score
        sizes = {k: sum(v.values()) if isinstance(v, dict) else v for k, v in splits.items()}
        learnt = [f"{sizes[k]:,} {what}" for k, what in TRAINING_SPLITS.items() if isinstance(sizes.get(k), int)]
        if learnt:
            lines.append("Photos it learnt from: " + ", ".join(learnt))
    metrics = raw.get("metrics") if isinstance(raw.get("metrics"), dict) else {}
    scores = [score_sentence(_figures(metrics, path), photos) for path, photos in SCORED_ON]
    if any(scores):
        lines += ["", "How well it sorts, at the default setting, photos it had never seen:"]
        lines += [f"• {score}" for score in scores if score]
        lines += ["", "A cat or dog it is less sure of stays where it is, and shows under Not sure."]
    return "\n".join(lines)


def show_about(parent: QWidget, card: ModelCard | None, version: str) -> None:
    dialog = QDialog(parent)
    dialog.setWindowTitle("About catsort")
    layout = QVBoxLayout(dialog)
    title = QLabel(f"<h2>catsort {version}</h2><p>Puts cat photos in <b>cats/</b>, dog photos in <b>dogs/</b>, "
                   "and leaves everything else where it is. Every move can be undone.</p>")
    title.setWordWrap(True)
    layout.addWidget(title)
    text = QPlainTextEdit(model_card_text(card) if card else "No model loaded.")
    text.setReadOnly(True)
    text.setMinimumSize(600, 320)
    layout.addWidget(text)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.exec()


def _qimage(path: Path, side: int) -> QImage | None:
    """The photo upright (EXIF orientation applied) by the core's decoder, which reads HEIC too."""
    try:
        img = open_image(path, side)
    except ImageError:
        return None
    img.thumbnail((side, side))
    data = img.tobytes()
    return QImage(data, img.width, img.height, img.width * 3, QImage.Format.Format_RGB888).copy()


def _decode_quietly(path: Path) -> QImage | None:
    """:func:`_qimage` in the preview's pool, where an exception would only be printed and the photo stay "Loading…"."""
    try:
        return _qimage(path, 1600)
    except Exception:  # noqa: BLE001 (out of memory on a huge photo, say: it cannot be shown, and says so)
        return None


class _Decoded(QObject):
    """Carries a photo decoded in the preview's pool back to the GUI thread (a queued signal)."""

    done = Signal(int, object)
    """(the photo's index, its QImage or None if it cannot be shown)"""


class Preview(QDialog):
    """A large view of one photo; Left/Right step through the photos shown in the grid, and the grid's
    override buttons and keys (C, D, O, U) give the user's say on the one shown (``override``: index, value).

    Photos are decoded off the GUI thread, one at a time, and only the one shown: a 12 MP HEIC takes about 0.5 s
    and a 54 MP PNG 1.7 s, which froze the window at every step, and held-down arrows queued one after another.
    """

    def __init__(self, parent: QWidget, paths: list[Path], start: int, caption: Callable[[int], str],
                 override: Callable[[int, Override | None], None] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("previewDialog")
        self._paths, self._index, self._caption, self._override = paths, start, caption, override
        self.override_buttons: list[QPushButton] = []
        self._photo: QPixmap | None = None
        """The photo as a pixmap, converted once per photo: a resize only scales it."""
        self._loading = True
        """The photo shown is still being decoded."""
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._decoded = _Decoded(self)
        self._decoded.done.connect(self._arrived)
        layout = QVBoxLayout(self)
        self._image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self._image.setMinimumSize(320, 240)
        self._image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self._text = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self._image, 1)
        layout.addWidget(self._text)
        buttons = QHBoxLayout()
        if override is not None:
            for text, keys, value in OVERRIDE_CHOICES.values():
                button = QPushButton(text)
                button.setToolTip("Key: " + " or ".join(keys))
                button.setAutoDefault(False)
                button.clicked.connect(lambda _=False, v=value: self.say(v))
                for key in keys:
                    QShortcut(QKeySequence(key), self, lambda v=value: self.say(v))
                buttons.addWidget(button)
                self.override_buttons.append(button)
        buttons.addStretch(1)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        QShortcut(QKeySequence(Qt.Key.Key_Left), self, lambda: self.step(-1))
        QShortcut(QKeySequence(Qt.Key.Key_Right), self, lambda: self.step(1))
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.accept)
        self.resize(900, 720)
        self.step(0)

    def step(self, by: int) -> None:
        index = max(0, min(len(self._paths) - 1, self._index + by))
        if by and index == self._index:
            return  # at an end: the photo shown stays, not decoded again
        self._index = index
        path = self._paths[index]
        self._photo, self._loading = None, True
        self._show()
        self.setWindowTitle(path.name)
        self._show_caption()
        for button in self.override_buttons:  # the verdict is there to change while its photo decodes
            button.setEnabled(True)
        self._pool.clear()  # photos stepped past, not yet started, are not decoded at all
        done = self._decoded.done
        self._pool.start(lambda: done.emit(index, _decode_quietly(path)))

    @Slot(int, object)
    def _arrived(self, index: int, image: QImage | None) -> None:
        if index != self._index:
            return  # stepped on meanwhile
        self._photo, self._loading = (None if image is None else QPixmap.fromImage(image)), False
        self._show()
        for button in self.override_buttons:
            button.setEnabled(self._photo is not None)

    def done(self, result: int) -> None:
        """Closed: the decode in hand finishes first (it reports to this dialog), the queued ones never start."""
        self._pool.clear()
        self._pool.waitForDone()
        super().done(result)

    def _show_caption(self) -> None:
        name = shown(self._paths[self._index].name)
        if len(name) > CAPTION_NAME_CHARS:  # one unbreakable line: a 194-character name made the dialog 1,338 px wide
            half = CAPTION_NAME_CHARS // 2
            name = f"{name[:half]}…{name[-half:]}"
        self._text.setText(f"{self._index + 1} of {len(self._paths)} · {name} · {self._caption(self._index)}")

    def say(self, value: Override | None) -> None:
        """The user's say on the photo shown (a file that cannot be shown has no verdict to change)."""
        if self._override is None or (self._photo is None and not self._loading):
            return
        self._override(self._index, value)
        self._show_caption()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._show()

    def _show(self) -> None:
        """The photo fitted to the space it has now, sharp at the screen's pixel ratio."""
        if self._photo is None:
            self._image.setText("Loading…" if self._loading else "This file cannot be shown.")
            return
        ratio = self.devicePixelRatioF()
        pixmap = self._photo.scaled(self._image.size() * ratio, Qt.AspectRatioMode.KeepAspectRatio,
                                    Qt.TransformationMode.SmoothTransformation)
        pixmap.setDevicePixelRatio(ratio)
        self._image.setPixmap(pixmap)
