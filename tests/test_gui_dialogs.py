"""The dialogs and the grid's delegate built directly (no window, no scan): their buttons, their words, what the
keys do, and where a badge is painted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from conftest import RED, photo  # noqa: E402
from PySide6.QtCore import QPoint, QRect, Qt  # noqa: E402
from PySide6.QtGui import QColor, QFont, QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QMessageBox, QStyleOptionViewItem, QWidget  # noqa: E402

from catsort.apply import Record  # noqa: E402
from catsort.classify import Prediction  # noqa: E402
from catsort.gui import dialogs  # noqa: E402
from catsort.gui.delegate import CELL, THUMB, PhotoDelegate  # noqa: E402
from catsort.gui.photos import PhotoModel  # noqa: E402
from catsort.images import encode_thumbnail  # noqa: E402
from catsort.model import ModelCard, shipped_card_path  # noqa: E402
from catsort.plan import Decision  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def parent(qtbot) -> QWidget:
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


def decisions(cats: int, stay: int, copy: bool = False) -> list[Decision]:
    """A plan: ``cats`` photos to cats/ and ``stay`` left where they are."""
    action = "copy" if copy else "move"
    return ([Decision(Path(f"/p/c{i}.jpg"), "cat", 0.99, action, "cats", f"c{i}.jpg") for i in range(cats)]
            + [Decision(Path(f"/p/o{i}.jpg"), "other", 0.99, "stay", None) for i in range(stay)])


def sorted_records(copy: bool = False) -> list[Record]:
    """An apply that put one photo in cats/ and one in dogs/."""
    action = "copy" if copy else "move"
    return [Record("/p/a.jpg", "cat", 0.9, action, "/p/cats/a.jpg", None),
            Record("/p/b.jpg", "dog", 0.9, action, "/p/dogs/b.jpg", None)]


@pytest.mark.parametrize("key", [Qt.Key.Key_Return, Qt.Key.Key_Escape])
def test_enter_or_esc_closes_the_summary_instead_of_opening_a_folder(qtbot, parent: QWidget, key: Qt.Key) -> None:
    box, buttons = dialogs.summary_box(parent, Path("/p"), sorted_records(), False, False)
    close = box.button(QMessageBox.StandardButton.Close)
    assert (box.defaultButton(), box.escapeButton()) == (close, close)
    box.show()
    qtbot.waitExposed(box)
    qtbot.keyClick(box, key)
    assert box.clickedButton() is close and box.clickedButton() not in buttons


@pytest.mark.parametrize(("copy", "undo"), [(False, "puts every photo back"), (True, "removes the copies")])
def test_the_confirmation_and_summary_say_what_undo_does_in_each_mode(parent: QWidget, copy: bool, undo: str) -> None:
    """Undoing a copy deletes the copies (the originals never moved): it does not "put them back"."""
    confirm, _ = dialogs.confirm_box(parent, decisions(2, 1, copy), copy, Path("/p"))
    summary, _ = dialogs.summary_box(parent, Path("/p"), sorted_records(copy), copy, False)
    assert confirm.informativeText().replace("\u200b", "") == f"In {Path('/p')}. Nothing is overwritten, and “Undo last sort” {undo}."
    assert summary.informativeText() == f"“Undo last sort” {undo}, now or after you close catsort."


@pytest.mark.parametrize(("stay", "sentence"), [
    (0, "Move 129 photos: 129 to cats/."),
    (1, "Move 129 photos: 129 to cats/; 1 stays where it is."),
    (1204, "Move 129 photos: 129 to cats/; 1,204 stay where they are."),
])
def test_the_plan_sentence_leaves_out_none_staying_and_agrees_with_one(stay: int, sentence: str) -> None:
    assert dialogs.plan_sentence(decisions(129, stay), False) == sentence


def test_the_about_scores_read_as_the_readme_table_does() -> None:
    """About rounded down (99.7%, 95.9%) where README's table rounds to nearest (99.75%, 96.0%, 99.9%): one
    reader saw two scores for the same photos. Each row's pets and other photos, in the card's order."""
    table = README.read_text().split("| at the default threshold |", 1)[1].split("\n\n", 1)[0]
    readme = [re.findall(r"\| ([\d.]+%)", row)[:2] for row in table.splitlines()[2:]]
    about = [re.findall(r"([\d.]+%) of the", line) for line in dialogs.model_card_text(ModelCard.load(shipped_card_path())).splitlines()
             if line.startswith("• On ")]
    assert about == readme == [["95.0%", "99.75%"], ["96.0%", "99.3%"], ["94.6%", "99.9%"]]


def test_the_test_split_is_named_with_its_other_pictures() -> None:
    """2,986 photos: 2,187 from the PetImages test set and 799 other pictures that are not PetImages."""
    card = ModelCard.load(shipped_card_path())
    support = {k: v["support"] for k, v in card.raw["metrics"]["petimages_other_test_split"]["per_class"].items()}
    assert support["other"] > 0
    assert f"• On {sum(support.values()):,} small photos (the PetImages test set and other pictures): " in dialogs.model_card_text(card)


BACKGROUND = QColor("#ff00ff")
"""A colour no part of a cell is painted in: whatever is not it, the delegate drew."""


class TextPainter(QPainter):
    """A painter that notes each text drawn in a rectangle, and whether it fitted: Qt clips one that does not."""

    def __init__(self, device: QImage) -> None:
        super().__init__(device)
        self.texts: list[tuple[str, bool]] = []

    def drawText(self, *args) -> None:  # noqa: N802 (Qt's name)
        if len(args) == 3 and isinstance(args[0], QRect):
            self.texts.append((args[2], self.fontMetrics().horizontalAdvance(args[2]) <= args[0].width()))
        super().drawText(*args)


def painted_cell(size: tuple[int, int], font_scale: float) -> tuple[QImage, list[tuple[str, bool]]]:
    """One cell as the grid paints it, for a photo of ``size`` the model is unsure of ("Maybe cat 45%"), and the
    texts drawn in it."""
    model = PhotoModel(("cat", "dog", "other"), 0.825)
    path = Path(f"/p/{size[0]}x{size[1]}.jpg")  # its own name: the delegate caches pixmaps by path
    model.add([Prediction(path, (0.45, 0.3, 0.25), thumbnail=encode_thumbnail(photo(RED, size), THUMB))])
    image = QImage(CELL, QImage.Format.Format_RGB32)
    image.fill(BACKGROUND)
    option = QStyleOptionViewItem()
    option.rect = QRect(QPoint(0, 0), CELL)
    painter = TextPainter(image)
    font = QFont(painter.font())
    font.setPointSizeF(font.pointSizeF() * font_scale)
    painter.setFont(font)
    PhotoDelegate().paint(painter, option, model.index(0))
    painter.end()
    return image, painter.texts


SHAPES = pytest.mark.parametrize("size", [(20, 200), (200, 20), (320, 240)])


@SHAPES
@pytest.mark.parametrize("font_scale", [1.0, 2.0])
def test_a_badge_stays_inside_the_thumbnail_box_whatever_the_photo(qtbot, size: tuple[int, int], font_scale: float) -> None:
    """On a photo 20 px wide the badge began at the photo's left edge and ran ~80 px right, past the cell.
    Beside the thumbnail's box, at its height, nothing is painted."""
    image, _ = painted_cell(size, font_scale)
    left = (CELL.width() - THUMB) // 2
    beside = [(x, y) for y in range(8, 8 + THUMB) for x in (*range(left), *range(left + THUMB, CELL.width()))
              if image.pixelColor(x, y) != BACKGROUND]
    assert beside == []


@SHAPES
def test_a_badge_too_wide_for_its_box_is_elided_not_cut(qtbot, size: tuple[int, int]) -> None:
    """With a large font "Maybe cat 45%" was clipped at both ends ("aybe cat 45"); now it ends in an ellipsis."""
    _, texts = painted_cell(size, 2.0)
    badge = texts[0][0]
    assert badge != "Maybe cat 45%" and badge.startswith("Maybe") and badge.endswith("…")
    assert [text for text, fits in texts if not fits] == []


def test_a_long_folder_path_wraps_in_the_confirmation_and_a_long_name_is_shortened_in_the_preview(parent: QWidget, tmp_path: Path) -> None:
    """A 229-character path was cut off at the message box's edge; a 194-character name made the preview 1,338 px wide."""
    folder = Path("/tmp/" + "/".join(["Holiday_photos_from_the_summer_of_2023_in_the_mountains"] * 4))
    confirm, _ = dialogs.confirm_box(parent, decisions(2, 1, False), False, folder)
    text = confirm.informativeText()
    assert str(folder) in text.replace("\u200b", "")
    assert max(len(run) for run in re.split(r"[\s\u200b]", text)) < 80, "the box breaks lines only there: a longer run is cut off"
    long_name = tmp_path / ("IMG_20230812_153012_" + "really_long_" * 14 + ".jpg")
    photo((200, 0, 0), (64, 48)).save(long_name)
    preview = dialogs.Preview(parent, [long_name], 0, lambda i: "Cat 99%", None)
    assert preview.minimumSizeHint().width() < 900
