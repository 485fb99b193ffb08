"""The dialogs built directly (no window, no scan): their buttons, their words, and what the keys do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from catsort.apply import Record
from catsort.gui import dialogs
from catsort.model import ModelCard, shipped_card_path
from catsort.plan import Decision

pytest.importorskip("pytestqt")

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
    assert confirm.informativeText() == f"In {Path('/p')}. Nothing is overwritten, and “Undo last sort” {undo}."
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
