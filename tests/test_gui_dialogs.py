"""The dialogs built directly (no window, no scan): their buttons, their words, and what the keys do."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from catsort.apply import Record
from catsort.gui import dialogs

pytest.importorskip("pytestqt")


@pytest.fixture
def parent(qtbot) -> QWidget:
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


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
