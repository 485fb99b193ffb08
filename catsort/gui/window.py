"""The main window: pick a folder, watch it scan, review every verdict, change the plan, apply, undo.

It wires widgets to the core's phases and owns no logic of its own: predictions come from
:func:`catsort.predict.predict`, every decision from :class:`catsort.plan.Planner` (through the
photo model), every file operation from :func:`catsort.apply.apply_plan` and
:func:`catsort.apply.undo_runs`, each run in a worker thread that reports by signals.
"""

from __future__ import annotations

import contextlib
import html
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from PySide6.QtCore import QEvent, QPoint, QSettings, QSize, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QIcon, QKeySequence, QPainter, QPixmapCache, QPolygon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QBoxLayout,
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSlider,
    QStackedWidget,
    QStyle,
    QStyleOptionSlider,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from catsort import __version__
from catsort.apply import CHANGED_SINCE_SCAN, Record, Started, UndoSummary, apply_plan, copied_before, last_undoable_run, settle_earlier_runs, undo_runs
from catsort.classify import Prediction
from catsort.errors import CatsortError, FolderBusyError, FolderError, FolderVanished
from catsort.fileops import check_folder, check_writable_places, write_problem
from catsort.gui import dialogs, worker
from catsort.gui.delegate import CELL, THUMB, PhotoDelegate
from catsort.gui.photos import GROUP_TITLES, GROUPS, OVERRIDE_CHOICES, GroupFilter, PhotoModel, describe, shown
from catsort.layout import made_by_catsort, output_folder_line
from catsort.model import Classifier, ModelCard, resolve_card_path
from catsort.plan import Override
from catsort.predict import predict, scan_folder
from catsort.scan import has_subfolders, taken_names

SLIDER_MIN, SLIDER_MAX = 340, 995
"""Thresholds in thousandths: below 1/3 every photo has a confident label; 0.995 leaves almost all in place."""
RECENT_MAX = 8


class ScanStarted(NamedTuple):
    """The scan job's first item: how many entries it will report, and what settling earlier runs did."""

    total: int
    settled_runs: int
    warnings: list[str]
    cannot_write: str | None
    """Why nothing in the folder can be sorted (read-only), said with the review instead of after it."""


class FolderState(NamedTuple):
    """What a job leaves the folder like, read in the worker (never on the GUI thread): whether a sort
    can be undone, the names already in cats/ and dogs/ (the plan's names must avoid them), and the photos
    an earlier copy run copied (a copy leaves them)."""

    undoable: bool
    taken: dict[str, list[str]]
    copied: dict[Path, str]


def folder_state(root: Path) -> FolderState:
    return FolderState(last_undoable_run(root) is not None, taken_names(root), copied_before(root))


class ThresholdSlider(QSlider):
    """A slider with a mark at the model card's default threshold."""

    def __init__(self, default: int) -> None:
        super().__init__(Qt.Orientation.Horizontal)
        self.default = default

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().paintEvent(event)
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        groove = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderGroove, self)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, self)
        span = groove.width() - handle.width()
        x = groove.left() + handle.width() // 2 + QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), self.default, span)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.palette().color(self.foregroundRole()))
        y = self.height() - 1
        painter.drawPolygon(QPolygon([QPoint(x - 5, y), QPoint(x + 5, y), QPoint(x, y - 6)]))
        painter.end()


class PathLabel(QLabel):
    """The open folder's path, shortened in the middle to the room it has (the whole of it in the tooltip):
    a long path must not set the window's minimum width."""

    def __init__(self) -> None:
        super().__init__()
        self._path = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def set_path(self, path: str) -> None:
        self._path = path
        self.setToolTip(path)
        self._elide()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        self.setText(self.fontMetrics().elidedText(self._path, Qt.TextElideMode.ElideMiddle, self.width()))


class WrappingRow(QWidget):
    """Two groups of controls side by side, or the second below the first (at the right) when the window is
    too narrow for both: the window's minimum width is then the wider group's, not their sum."""

    def __init__(self, first: QWidget, second: QWidget) -> None:
        super().__init__()
        self._first, self._second = first, second
        self._layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(first, 1)
        self._layout.addWidget(second, 0, Qt.AlignmentFlag.AlignRight)

    def side_by_side(self) -> bool:
        return self._layout.direction() == QBoxLayout.Direction.LeftToRight

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        width = max(self._first.minimumSizeHint().width(), self._second.minimumSizeHint().width())
        return QSize(width, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._arrange()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # a label grew ("Move 1,204 photos…"): does it still fit?
            self._arrange()
        return super().event(event)

    def _arrange(self) -> None:
        room = self._first.sizeHint().width() + self._layout.spacing() + self._second.sizeHint().width()
        direction = QBoxLayout.Direction.LeftToRight if self.width() >= room else QBoxLayout.Direction.TopToBottom
        if direction != self._layout.direction():
            self._layout.setDirection(direction)


class MainWindow(QMainWindow):
    job_finished = Signal(str, bool)
    """(scanning | applying | undoing, whether it ran to its end): after the window has shown the outcome."""

    def __init__(self, card_path: Path | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("catsort")
        self.setAcceptDrops(True)
        self.settings = QSettings()
        self.card: ModelCard | None = None
        self.classifier: Classifier | None = None
        self.model_error: str | None = None
        try:
            self.card = ModelCard.load(resolve_card_path(card_path))
            self.classifier = Classifier(self.card, threads=1)  # one per decode worker: the workers are the parallelism
        except CatsortError as exc:
            self.model_error = str(exc)
        labels = self.card.labels if self.card else ("cat", "dog", "other")
        default = self.card.threshold if self.card else 0.8
        self.folder: Path | None = None
        self.recursive = False
        self._job = None  # (thread, worker) of the running job
        self._job_kind = ""
        self._scan_total = 0
        self._scan_started = 0.0
        self._settled: tuple[int, list[str]] = (0, [])
        """What the scan's settling of interrupted runs did (runs settled, warnings), for its closing status line."""
        self._looked = 0
        """Photos the last scan looked at: a stopped scan's banner still counts them after a sort took some away."""
        self._sorted_since_scan = False
        self._folder_gone = False
        """The open folder was deleted, moved or unplugged during its last job (FolderVanished): nothing of it is shown."""
        self._unscanned: int | None = None
        """Photos of the folder the last scan did not look at, because it was stopped (None: it finished);
        0 if it stopped before the folder was listed."""
        self._cannot_write: str | None = None
        """Why the scanned folder cannot be sorted (read-only, from :func:`~catsort.fileops.write_problem`), as the
        button's tooltip and the status line both say it, else None."""
        self._apply_records: list[Record] = []
        self._outputs_after_apply: FolderState | None = None
        """The names in cats/ and dogs/, and the copies, an apply left (None until its job has read them)."""
        self._undoable = False
        self._job_failed = self._stopping = False
        self._job_error = ""  # the failed job's one line, for its dialog and the status line that follows it
        self._job_error_kind = ""  # the failed job's error class, which names its dialog
        self._close_when_done = False
        self._rescan_when_done = False
        self._rescan_note = ""  # "Put 38 photos back. ": the job's outcome, kept for the status line of the rescan that follows it
        self._undo_dialog: tuple[str, str] | None = None  # (title, text) an undo's outcome asks to show when it ends
        self._closed = False  # the window was closed: a job's end starts no rescan
        self._verdicts: dict[Path, Prediction] = {}
        """Every verdict the scans of this folder gave, by path, also of photos a sort has moved away: the rescan
        after an undo (or a change of Include sub-folders) reuses those still unchanged at their path."""
        self._verdicts_of: tuple[Path, int] | None = None
        """The folder and thumbnail size :attr:`_verdicts` belong to."""
        self._threads: list[QThread] = []
        """Job threads not yet deleted: a job reports it is finished a moment before its thread ends, and
        neither a thread nor the window (its parent) may be deleted before then (Qt aborts)."""
        self.state = "empty"
        self.photos = PhotoModel(labels, default, self)
        self.filter = GroupFilter(self)
        self.filter.setSourceModel(self.photos)
        self._build(default)
        self._load_settings()
        self.photos.rowsInserted.connect(self._update_counts)
        self.photos.dataChanged.connect(self._update_counts)
        self.photos.modelReset.connect(self._update_counts)
        self._update_counts()
        self._set_state("empty")
        if QApplication.instance() is not None:  # quitting (a session logging out) never destroys a running job
            QApplication.instance().aboutToQuit.connect(self._stop_job)
        if self.model_error:
            QTimer.singleShot(0, lambda: dialogs.show_error(self, "The model cannot be used", self.model_error or ""))

    # --- building ---

    def _build(self, default: float) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addLayout(self._build_folder_row())
        layout.addWidget(self._build_progress_row())
        layout.addWidget(self._build_stopped_banner())
        layout.addWidget(self._build_tabs())
        layout.addWidget(self._build_results(), 1)
        self._build_view_actions()
        layout.addWidget(self._build_sort_row(default))
        self.setCentralWidget(central)
        self.status = self.statusBar()
        self._threshold_moved(self.threshold_slider.value())

    def _build_folder_row(self) -> QHBoxLayout:
        """The folder to sort: choose, recent, sub-folders, and About."""
        top = QHBoxLayout()
        self.folder_button = QPushButton(QIcon.fromTheme("folder-open"), "Choose folder…")
        self.folder_button.setObjectName("folderButton")
        self.folder_button.setToolTip("Choose the folder of photos to sort (or drop a folder on the window)")
        self.folder_button.clicked.connect(self.choose_folder)
        self.recent_button = QPushButton("Recent")  # a push button's menu arrow has room of its own (a tool button's overlapped the text)
        self.recent_button.setObjectName("recentButton")
        self.recent_button.setAccessibleName("Recent folders")
        self.recent_menu = QMenu(self)
        self.recent_menu.aboutToShow.connect(self._drop_missing_recent)
        self.recent_button.setMenu(self.recent_menu)
        self.subfolders_box = QCheckBox("Include sub-folders")
        self.subfolders_box.setObjectName("subfoldersBox")
        self.folder_label = PathLabel()
        self.folder_label.setObjectName("folderLabel")
        about = QToolButton()
        about.setObjectName("aboutButton")
        about.setIcon(QIcon.fromTheme("help-about"))
        about.setText("About")
        about.setAccessibleName("About catsort and its model")
        about.clicked.connect(lambda: dialogs.show_about(self, self.card, __version__))
        top.addWidget(self.folder_button)
        top.addWidget(self.recent_button)
        top.addWidget(self.subfolders_box)
        # Ticked or unticked by the user with a folder open: that folder is scanned again the new way
        # (``clicked``, not ``toggled``: open_folder sets the box itself).
        self.subfolders_box.clicked.connect(self._subfolders_clicked)
        top.addSpacing(12)
        top.addWidget(self.folder_label, 1)
        top.addWidget(about)
        return top

    def _build_progress_row(self) -> QWidget:
        """Progress and Cancel, shown only while a scan or a sort runs."""
        progress = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progressBar")
        self.progress_bar.setAccessibleName("Progress")
        self.progress_label = QLabel()
        self.progress_label.setObjectName("progressLabel")
        self.progress_label.setMinimumWidth(300)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_button.setToolTip("Stop (Esc): nothing more is changed; what was done stays undoable")
        self.cancel_button.clicked.connect(self.cancel)
        progress.addWidget(self.progress_bar, 1)
        progress.addWidget(self.progress_label)
        progress.addWidget(self.cancel_button)
        self.progress_row = QWidget()
        self.progress_row.setLayout(progress)
        self.progress_row.layout().setContentsMargins(0, 0, 0, 0)
        return self.progress_row

    def _build_stopped_banner(self) -> QFrame:
        """Over the review, for as long as what it says holds: a scan that did not finish (without it, its photos
        look like the whole folder) and a folder nothing can be written in (a status line fades, and is cut
        short in a narrow window)."""
        self.stopped_banner = QFrame()
        self.stopped_banner.setObjectName("stoppedBanner")
        self.stopped_banner.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(self.stopped_banner)
        row.setContentsMargins(8, 4, 8, 4)
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(20, 20))
        self.stopped_label = QLabel()
        self.stopped_label.setObjectName("stoppedLabel")
        self.stopped_label.setWordWrap(True)
        self.scan_again_button = QPushButton("Scan again")
        self.scan_again_button.setObjectName("scanAgainButton")
        self.scan_again_button.clicked.connect(self._scan_again)
        row.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.stopped_label, 1)
        row.addWidget(self.scan_again_button, 0, Qt.AlignmentFlag.AlignTop)
        self.stopped_banner.hide()
        return self.stopped_banner

    def _build_tabs(self) -> QTabBar:
        """One tab per destination, filtering the review."""
        self.tabs = QTabBar()
        self.tabs.setObjectName("groupTabs")
        self.tabs.setExpanding(False)
        self._tab_groups = ["all", *GROUPS]
        for group in self._tab_groups:
            self.tabs.addTab(GROUP_TITLES[group])
        self.tabs.currentChanged.connect(lambda i: self.filter.set_group(self._tab_groups[i]))
        return self.tabs

    def _build_results(self) -> QStackedWidget:
        """The thumbnails' grid, or the empty state's text before a folder is open."""
        self.stack = QStackedWidget()
        self.empty = QLabel()
        self.empty.setObjectName("emptyState")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setTextFormat(Qt.TextFormat.RichText)
        self.empty.linkActivated.connect(lambda folder: self.open_folder(Path(folder), self.subfolders_box.isChecked()))
        self.view = QListView()
        self.view.setObjectName("resultsView")
        self.view.setAccessibleName("Photos and their verdicts")
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(200)
        self.view.setGridSize(CELL + QSize(6, 6))
        self.view.setSpacing(0)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setModel(self.filter)
        self.view.setItemDelegate(PhotoDelegate(self.view))
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.doubleClicked.connect(lambda _: self.preview())
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.view)
        return self.stack

    def _build_view_actions(self) -> None:
        """Overrides and preview, as keys on the grid and in its context menu."""
        self.override_actions: dict[str, QAction] = {}
        for key, (text, keys, value) in OVERRIDE_CHOICES.items():
            action = QAction(text, self.view)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(lambda _=False, v=value: self.override_selected(v))
            self.view.addAction(action)
            self.override_actions[key] = action
        preview = QAction("Preview", self.view)
        preview.setShortcuts([QKeySequence(Qt.Key.Key_Space), QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)])
        preview.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        preview.triggered.connect(self.preview)
        self.view.addAction(preview)
        self.preview_action = preview

    def _build_sort_row(self, default: float) -> WrappingRow:
        """The threshold; then move or copy, the action's button (Move… or Copy…) and Undo, below it in a
        narrow window."""
        self.threshold_slider = ThresholdSlider(round(default * 1000))
        self.threshold_slider.setObjectName("thresholdSlider")
        self.threshold_slider.setAccessibleName("Confidence needed to move or copy a photo")
        self.threshold_slider.setRange(SLIDER_MIN, SLIDER_MAX)
        self.threshold_slider.setSingleStep(5)
        self.threshold_slider.setPageStep(50)
        self.threshold_slider.setValue(round(default * 1000))
        self.threshold_slider.setMinimumWidth(160)
        self.threshold_slider.valueChanged.connect(self._threshold_moved)
        # Dragging fires a value per pixel; re-plan for the latest one when the event queue is idle.
        self._replan_timer = QTimer(self)
        self._replan_timer.setSingleShot(True)
        self._replan_timer.setInterval(0)
        self._replan_timer.timeout.connect(lambda: self.photos.set_threshold(self.threshold_slider.value() / 1000))
        self.threshold_label = QLabel()
        self.threshold_label.setObjectName("thresholdLabel")
        # As wide as its widest text, so that the slider does not shift as the value changes.
        self.threshold_label.setMinimumWidth(self.threshold_label.fontMetrics().horizontalAdvance("99.5% sure (default)") + 4)
        self.reset_threshold_button = reset = QToolButton()
        reset.setObjectName("resetThresholdButton")
        reset.setText("Default")
        reset.setToolTip("Back to the model's default threshold")
        reset.clicked.connect(lambda: self.threshold_slider.setValue(self.threshold_slider.default))
        self.move_radio = QRadioButton("Move")
        self.copy_radio = QRadioButton("Copy")
        self.move_radio.setChecked(True)
        mode = QButtonGroup(self)
        mode.addButton(self.move_radio)
        mode.addButton(self.copy_radio)
        self.copy_radio.toggled.connect(self._mode_changed)
        self.apply_button = QPushButton("Copy 99,999 photos…")
        # As wide as its widest text from the start: the slider beside it keeps its length as the count changes.
        self.apply_button.setMinimumWidth(self.apply_button.sizeHint().width())
        self.apply_button.setText("Move…")
        self.apply_button.setObjectName("applyButton")
        self.apply_button.setDefault(True)
        self.apply_button.clicked.connect(self.apply)
        self.undo_button = QPushButton(QIcon.fromTheme("edit-undo"), "Undo last sort")
        self.undo_button.setObjectName("undoButton")
        self.undo_button.clicked.connect(self.undo)
        self.threshold_caption = QLabel("Move when at least")
        threshold, action = QWidget(), QWidget()
        row = QHBoxLayout(threshold)
        row.setContentsMargins(0, 0, 0, 0)
        for widget, stretch in ((self.threshold_caption, 0), (self.threshold_slider, 1), (self.threshold_label, 0), (reset, 0)):
            row.addWidget(widget, stretch)
        row = QHBoxLayout(action)
        row.setContentsMargins(16, 0, 0, 0)
        for widget in (self.move_radio, self.copy_radio, self.apply_button, self.undo_button):
            row.addWidget(widget)
        self.sort_row = WrappingRow(threshold, action)
        self.sort_row.setObjectName("sortRow")
        return self.sort_row

    # --- settings ---

    def _load_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 760)
        self.subfolders_box.setChecked(self.settings.value("scan/subfolders", False, type=bool))
        self._refresh_recent()
        self._drop_missing_recent()  # nor does the start page offer them

    def recent_folders(self) -> list[str]:
        value = self.settings.value("recent/folders", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _remember(self, folder: Path) -> None:
        self._set_recent([str(folder)] + [f for f in self.recent_folders() if f != str(folder)])

    def _forget(self, folder: Path) -> None:
        """A recent folder that failed to open leaves the list: it would only fail again."""
        if str(folder) in self.recent_folders():
            self._set_recent([f for f in self.recent_folders() if f != str(folder)])

    @Slot()
    def _drop_missing_recent(self) -> None:
        """At start and just before the Recent menu shows: folders deleted, renamed or unmounted since leave the list."""
        recent = self.recent_folders()
        present = [f for f in recent if os.path.isdir(f)]
        if present != recent:
            self._set_recent(present)

    def _set_recent(self, folders: list[str]) -> None:
        self.settings.setValue("recent/folders", folders[:RECENT_MAX])
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.recent_folders():
            # "&" doubled: a menu takes a single one for the next letter's shortcut, and drops it from the name.
            self.recent_menu.addAction(shown(folder).replace("&", "&&"), lambda f=folder: self.open_folder(Path(f), self.subfolders_box.isChecked()))
        if self.recent_menu.isEmpty():  # all of them gone while the menu opens: it says so rather than showing nothing
            self.recent_menu.addAction("No recent folders").setEnabled(False)
        self.recent_button.setEnabled(self._job is None and bool(self.recent_folders()))
        if self.folder is None:
            self._refresh_empty_page()

    @Slot()
    def _stop_job(self) -> None:
        """Cancel the job and wait for the core to stop where it is safe (an apply ends its journal)."""
        if self._job is not None:
            self._job[1].cancel()
        self._wait_for_threads()

    def _wait_for_threads(self) -> None:
        for thread in self._threads:
            thread.quit()
            thread.wait()
        self._reap_threads()

    def _reap_threads(self) -> None:
        """Delete the threads of finished jobs that have really ended."""
        ended = [t for t in self._threads if t.isFinished()]
        self._threads = [t for t in self._threads if not t.isFinished()]
        for thread in ended:
            thread.deleteLater()

    @property
    def busy(self) -> bool:
        """A job is running, or its thread has not ended yet."""
        self._reap_threads()
        return self._job is not None or bool(self._threads)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self._job is not None:
            # Never exit under a running job: an apply finishes the file in hand and ends its journal first.
            self._job[1].cancel()
            self._close_when_done = True
            self.status.showMessage("Finishing the file in progress, then closing…")
            event.ignore()
            return
        self._wait_for_threads()  # finished jobs whose threads are still ending: a moment at most
        self._closed = True
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("scan/subfolders", self.subfolders_box.isChecked())
        super().closeEvent(event)

    # --- states ---

    def _set_state(self, state: str) -> None:
        """empty | scanning | review | applying | undoing: which controls make sense now."""
        self.state = state
        busy = state in ("scanning", "applying", "undoing")
        has_photos = self.photos.rowCount() > 0
        self.progress_row.setVisible(busy)
        self.cancel_button.setEnabled(state in ("scanning", "applying"))  # an undo runs to its end
        self.folder_button.setEnabled(not busy)
        self.recent_button.setEnabled(not busy and bool(self.recent_folders()))
        self.subfolders_box.setEnabled(not busy)
        self.scan_again_button.setEnabled(not busy)
        # While files move or come back, the plan being carried out must stay the one on screen.
        for control in (self.threshold_slider, self.reset_threshold_button):
            control.setEnabled(state not in ("applying", "undoing"))
        self.apply_button.setEnabled(state == "review" and self._can_apply())
        self.undo_button.setEnabled(not busy and self._undoable)
        self.move_radio.setEnabled(not busy)
        self.copy_radio.setEnabled(not busy)
        for action in self.override_actions.values():
            action.setEnabled(state == "review")
        self.stack.setCurrentWidget(self.view if has_photos or state == "scanning" else self.empty)
        self.tabs.setVisible(has_photos or state == "scanning")
        if state == "empty" or not has_photos:
            self._refresh_empty_page()

    def _refresh_empty_page(self) -> None:
        """The text shown instead of the grid: the model's problem, the start page (with the recent folders),
        or why the open folder shows no photo."""
        if self.model_error:
            text = f"<h2>The model cannot be used</h2><p>{html.escape(self.model_error)}</p>"
        elif self.folder is None:
            text = ("<h2>Sort your cat and dog photos</h2><p>Choose a folder, or drop one here.</p>"
                    "<p>Nothing moves until you have seen every verdict and said so.</p>")
            recent = self.recent_folders()[:5]
            if recent:
                links = "<br>".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in recent)
                text += f"<p><br><b>Recent folders</b><br>{links}</p>"
        elif self._folder_gone:
            text = (f"<h2>{html.escape(self.folder.name)} is gone</h2><p>{html.escape(str(self.folder))} was deleted, moved or "
                    "its disk removed. Choose it again where it is now.</p>")
        elif self._unscanned is not None:  # the banner above says how far it got
            text = f"<h2>The scan of {html.escape(self.folder.name)} was stopped</h2><p>{html.escape(str(self.folder))}</p>"
        else:
            text = f"<h2>No photos to sort in {html.escape(self.folder.name)}</h2><p>{html.escape(str(self.folder))}</p>"
            if self._undoable:  # sorted to the last photo: where they went, and the way back
                text += "<p>The last sort put its photos in cats/ and dogs/: “Undo last sort” puts them back.</p>"
        self.empty.setText(text)

    def _to_move(self) -> int:
        return self.photos.acting()

    def _can_apply(self) -> bool:
        return self.classifier is not None and self._cannot_write is None and self._to_move() > 0

    @Slot()
    def _update_counts(self, *_: object) -> None:
        counts = self.photos.counts()
        total = sum(counts.values())
        for i, group in enumerate(self._tab_groups):
            n = total if group == "all" else counts.get(group, 0)
            self.tabs.setTabText(i, f"{GROUP_TITLES[group]}  {n:,}")
        moving = self._to_move()
        verb = dialogs.verb(self.copy_radio.isChecked()).name
        self.threshold_caption.setText(f"{verb} when at least")
        if self._cannot_write:  # a read-only folder: the review shows the verdicts, and the button says why it cannot act
            self.apply_button.setText("Read-only folder")
        else:
            self.apply_button.setText(f"{verb} {dialogs.plural(moving, 'photo')}…" if moving else f"{verb}…")
        self.apply_button.setToolTip(self._cannot_write or "")
        if self.state == "review":
            self.apply_button.setEnabled(self._can_apply())

    # --- folder and scan ---

    @Slot()
    def choose_folder(self) -> None:
        start = str(self.folder) if self.folder else (self.recent_folders() or [str(Path.home())])[0]
        chosen = QFileDialog.getExistingDirectory(self, "Choose a folder of photos", start)
        if chosen:
            self.open_folder(Path(chosen), self.subfolders_box.isChecked())

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        urls = event.mimeData().urls()
        if self._job is None and urls and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt's name)
        self.open_folder(Path(event.mimeData().urls()[0].toLocalFile()), self.subfolders_box.isChecked())

    def _subfolders_clicked(self, checked: bool) -> None:
        if self.folder is not None and self._job is None and checked != self.recursive:
            self.open_folder(self.folder, checked)

    def open_folder(self, folder: Path, recursive: bool = False) -> None:
        """Scan ``folder`` in the background; results appear in the grid as they arrive.

        Even listing the folder happens in the worker: 20,000 names take long enough to freeze a window.
        """
        if self._job is not None or self.classifier is None:
            return
        self.subfolders_box.setChecked(recursive)
        try:
            root = check_folder(folder)
        except CatsortError as exc:
            self._forget(folder)
            dialogs.show_error(self, "This folder cannot be sorted", str(exc))
            return
        if root != self.folder and not self._may_open(root, recursive):  # asked once, not at every rescan
            return
        self.folder, self.recursive = root, recursive
        self._remember(root)
        self.folder_label.set_path(str(root))
        self.setWindowTitle(f"{root.name} — catsort")
        same_folder = self._verdicts_of is not None and self._verdicts_of[0] == root
        self.photos.clear(keep_overrides=same_folder)
        QPixmapCache.clear()  # a photo changed since the last scan must not show its old thumbnail
        self._scan_total, self._scan_started, self._settled, self._cannot_write = 0, time.monotonic(), (0, []), None
        self._folder_gone = False
        self._show_stopped(None)
        self.progress_bar.setRange(0, 0)  # a busy bar until the count is known
        self.progress_label.setText("Listing photos…")  # not the last job's "Stopping…" or counts
        if not self._rescan_note:  # the last scan's closing line is not about this one (an undo's stays: it is why this scan runs)
            self.status.clearMessage()
        classifier = self.classifier
        size = round(THUMB * min(2.0, max(1.0, self.devicePixelRatioF())))
        if self._verdicts_of != (root, size):
            self._verdicts, self._verdicts_of = {}, (root, size)
        known = dict(self._verdicts)  # the worker's own copy: this thread adds to the dict as batches arrive

        def job(cancel: threading.Event) -> Iterator[object]:
            check_writable_places(root)  # a linked cats/ is said before the review, not after it
            # As headless does: a run killed mid-sort is finished or rolled back before the listing, so the
            # review shows each of its photos where it now is (not at a place an apply would find it gone from).
            settled, warnings, _ = settle_earlier_runs(root)
            scan = scan_folder(root, recursive)
            yield folder_state(root)
            yield ScanStarted(scan.total, settled, warnings, write_problem(root))
            yield from predict(scan, classifier, thumbnail_size=size, cancel=cancel, known=known)

        self._start("scanning", job)

    def forget_verdicts(self) -> None:
        """The next scan decodes and classifies every photo again, as the first scan of a folder does."""
        self._verdicts, self._verdicts_of = {}, None

    def _may_open(self, root: Path, recursive: bool) -> bool:
        """Whether to go on opening ``root``: sorting catsort's own cats/ or dogs/ would make cats/cats/, so
        the user is offered its parent instead (opened here) or, if nothing says catsort made it, it anyway."""
        line = output_folder_line(root)
        if line is None:
            return True
        choice = dialogs.ask_output_folder(self, line, may_open_anyway=not made_by_catsort(root))
        if choice == "parent":
            self.open_folder(root.parent, recursive)
        return choice == "anyway"

    def _start(self, kind: str, job: worker.Job) -> None:
        self._job_kind = kind
        self._job_failed = self._stopping = False
        self._job_error = self._job_error_kind = ""
        self._set_state(kind)
        self._job = worker.start(self, job, self._on_batch, self._on_failed, self._on_finished)
        self._reap_threads()
        self._threads.append(self._job[0])

    @Slot()
    def cancel(self) -> None:
        if self._job is not None:
            self._job[1].cancel()
            self.cancel_button.setEnabled(False)
            self._stopping = True  # batches still arriving must not write over it
            self.progress_label.setText("Stopping…")

    @Slot(object)
    def _on_batch(self, items: list) -> None:
        """Whatever a job reports, by kind: the scan's results, an apply's records, an undo's summary."""
        self._apply_records.extend(i for i in items if isinstance(i, Record))
        for item in items:  # a scan's FolderState comes first: its taken names then plan the predictions of the batch once
            if isinstance(item, ScanStarted):
                self._scan_total = item.total
                self.progress_bar.setRange(0, item.total)
                self._settled = (item.settled_runs, item.warnings)
                self._cannot_write = item.cannot_write and f"{item.cannot_write}: nothing can be moved or copied here"
                self._refresh_banner()
                self._update_counts()
            elif isinstance(item, FolderState):
                self._undoable = item.undoable
                if self._job_kind == "applying":  # planned once, with the moved photos gone, when it ends
                    self._outputs_after_apply = item
                elif self._job_kind == "scanning":  # after an undo the rescan plans afresh: no re-plan here
                    self.photos.set_taken(item.taken, item.copied)
            elif isinstance(item, Started) and item.warnings:
                self.status.showMessage(" · ".join(item.warnings), 20000)
            elif isinstance(item, UndoSummary):
                self._show_undone(item)
        predictions = [i for i in items if isinstance(i, Prediction)]
        self._verdicts.update((p.path, p) for p in predictions if p.probabilities is not None)
        self.photos.add(predictions)
        if self._job_kind == "undoing" or self._stopping:
            return
        done = self.photos.rowCount() if self._job_kind == "scanning" else len(self._apply_records)
        if self.progress_bar.maximum() == 0:
            return  # still listing: "0 / 0 photos" would say nothing
        self.progress_bar.setValue(done)
        elapsed = max(time.monotonic() - self._scan_started, 1e-6)
        rate = done / elapsed
        left = (self.progress_bar.maximum() - done) / rate if rate > 0 else 0
        self.progress_label.setText(f"{done:,} / {self.progress_bar.maximum():,} photos · {rate:.0f}/s · {_duration(left)} left")

    @Slot(str, str)
    def _on_failed(self, kind: str, message: str) -> None:
        """Keep why the job failed. Its dialog waits for the job's end (:meth:`_on_finished`): then there is one
        dialog over a settled window, never one opened inside another's event loop, and none while it closes."""
        self._job_failed, self._job_error, self._job_error_kind = True, message, kind
        self._folder_gone = kind == FolderVanished.__name__

    def _error_title(self) -> str:
        """The failed job's dialog title: what stopped, or what was refused (a sort that stopped part way says
        so in its summary instead)."""
        if self._job_error_kind == FolderBusyError.__name__:
            return "This folder is busy"
        if self._job_kind == "scanning":
            return "This folder cannot be sorted" if self._job_error_kind == FolderError.__name__ else "The scan stopped"
        if self._job_kind == "applying":
            return f"Nothing was {dialogs.verb(self.copy_radio.isChecked()).past.lower()}"
        return "Undo stopped"

    @Slot(bool)
    def _on_finished(self, completed: bool) -> None:
        kind, self._job = self._job_kind, None
        # Closing (its button, Ctrl-C, a shutdown), the window opens no dialog: nobody is there to answer it.
        tell = not self._close_when_done
        records: list[Record] = []
        if kind == "scanning":
            self._end_scan(completed)
        elif kind == "applying":
            records = self._end_apply(completed)
        else:
            self._settle_review()
            if not completed:  # an undo that did not end has no rescan to say what happened
                self._say_outcome("Undo stopped.")
        # The dialogs here, not as the job's items arrive: a dialog's own event loop would run this method inside it.
        undo_dialog, self._undo_dialog = self._undo_dialog, None
        if tell and undo_dialog:
            dialogs.show_info(self, *undo_dialog)
        if tell and records:  # one dialog: what the sort did, and why it stopped
            dialogs.show_summary(self, self.folder, records, self.copy_radio.isChecked(), not completed,
                                 self._job_error if self._job_failed else "")
        elif tell and self._job_failed:
            dialogs.show_error(self, self._error_title(), self._job_error)
        rescan, self._rescan_when_done = self._rescan_when_done, False
        if self._close_when_done:
            self.close()
        elif rescan and self.folder is not None and not self._folder_gone and not self._closed:
            self.open_folder(self.folder, self.recursive)  # (closed while its dialog was open: a shutdown, say)
        else:
            self._rescan_note = ""
        self.job_finished.emit(kind, completed)

    def _end_scan(self, completed: bool) -> None:
        """The review after a scan: its closing status line, the stopped-scan banner, "No photos found"."""
        n = self.photos.rowCount()
        note = _settled_note(*self._settled) + (f" · {self._cannot_write}" if self._cannot_write else "")
        nothing = "" if self._settled[0] else ": nothing was changed"
        stopped = f" (stopped{nothing})" if self._job_failed else f" (cancelled{nothing})"
        undone, self._rescan_note = self._rescan_note, ""
        if self._folder_gone:  # what it scanned is not there to sort: the reason is the news
            self.status.showMessage(self._job_error, 30000)
        else:
            self.status.showMessage(undone + f"Scanned {dialogs.plural(n, 'photo')} in {_duration(time.monotonic() - self._scan_started)}"
                                    + ("" if completed else stopped) + note, 30000 if note else 15000)
        self._looked, self._sorted_since_scan = n, False
        self._show_stopped(None if completed or 0 < self._scan_total <= n else max(self._scan_total - n, 0))
        self._settle_review()
        if completed and self._scan_total == 0 and not self._close_when_done:
            untried = not self.recursive and self.folder is not None and has_subfolders(self.folder)
            dialogs.show_info(self, "No photos found", f"There are no photos in {self.folder}" + (
                " (its sub-folders were not looked at: tick “Include sub-folders”)." if untried else "."))

    def _end_apply(self, completed: bool) -> list[Record]:
        """The review after an apply (the photos done leave it), its status line; the apply's records."""
        records, self._apply_records = self._apply_records, []
        # Moved or copied, a photo is done: it leaves the review, so a second click cannot copy it again.
        outputs, self._outputs_after_apply = self._outputs_after_apply, None
        # Gone from its place (another program moved or deleted it), a photo leaves too: sorting it again would only fail again.
        gone = {r.path for r in records if r.action == "error" and not os.path.lexists(r.path)}
        self.photos.remove_paths({r.path for r in records if r.destination and r.action in ("move", "copy")} | gone,
                                 outputs and (outputs.taken, outputs.copied))
        self._sorted_since_scan = self._sorted_since_scan or bool(records)
        copy = self.copy_radio.isChecked()
        stopped = not completed and bool(records)  # refused before its first file, it did not stop part way
        sentence = dialogs.done_sentence(records, copy, stopped)
        self._say_outcome(sentence, dialogs.failed_sentence(records, copy))
        # A photo changed since its verdict, or a folder that refused the sort (gone read-only since the scan), is
        # looked at again: the review then shows the new photo's verdict, or why nothing can be sorted here, and
        # not a button that would only fail the same way again.
        refused = self._job_error_kind == FolderError.__name__ and not records
        if refused or any(r.error == CHANGED_SINCE_SCAN for r in records):
            self._rescan_when_done, self._rescan_note = True, sentence + " "
        self._settle_review()
        return records

    @Slot()
    def _scan_again(self) -> None:
        if self.folder is not None:
            self.open_folder(self.folder, self.recursive)

    def _settle_review(self) -> None:
        """After any job: the review as it now is (cleared if the folder is gone), its banner, and the focus on the grid
        (Space previews, C/D/O override; not the button the job left focused, nor the slider, which arrows would move)."""
        if self._folder_gone:
            self.photos.clear()
            self._undoable, self._cannot_write, self._unscanned = False, None, None
        self._refresh_banner()
        self._set_state("review" if self.photos.rowCount() else "empty")
        if self.photos.rowCount():
            self.view.setFocus()

    def _show_stopped(self, unscanned: int | None) -> None:
        """Say (or, with None, no longer say) over the review that the scan stopped with ``unscanned`` photos unseen."""
        self._unscanned = unscanned
        self._refresh_banner()

    def _refresh_banner(self) -> None:
        """The banner's lines for what holds now: the folder cannot be written, the scan stopped (with Scan again)."""
        lines = []
        if self._cannot_write:
            reason = self._cannot_write.removeprefix(f"{self.folder}: ")  # the folder's path is shown above
            lines.append(reason[:1].upper() + reason[1:] + ".")
        if self._unscanned is not None:
            lines.append(stopped_scan_text(self._looked, self._scan_total, self._job_failed,
                                           dialogs.verb(self.copy_radio.isChecked()), self._sorted_since_scan))
        self.stopped_label.setText("\n".join(lines))
        self.scan_again_button.setVisible(self._unscanned is not None)
        self.stopped_banner.setVisible(bool(lines))

    def _say_outcome(self, sentence: str, *more: str) -> None:
        """The status line after a sort or an undo: what it did (the scan's line before it no longer holds)
        and the failed job's reason, if any."""
        parts = [sentence, *(m for m in more if m), self._job_error]
        self.status.showMessage(" · ".join(p for p in parts if p), 30000)

    # --- review ---

    @Slot(int)
    def _threshold_moved(self, value: int) -> None:
        threshold = value / 1000
        self.threshold_label.setText(f"{threshold:.1%} sure" + (" (default)" if value == self.threshold_slider.default else ""))
        self._replan_timer.start()

    @Slot(bool)
    def _mode_changed(self, copy: bool) -> None:
        self.photos.set_copy(copy)
        self._refresh_banner()

    def selected_rows(self) -> list[int]:
        selected = self.view.selectionModel().selectedIndexes()
        if not selected and self.view.currentIndex().isValid():  # keys then act on the photo with the focus frame, as Space does
            selected = [self.view.currentIndex()]
        return sorted(self.filter.mapToSource(i).row() for i in selected)

    def override_selected(self, value: Override | None) -> None:
        if self.state != "review":
            return
        rows = self.selected_rows()
        if rows and not self.photos.set_override(rows, value):  # a key that did nothing says why
            self.status.showMessage("An unreadable file stays where it is: catsort cannot see what it shows.", 10000)

    def _context_menu(self, pos) -> None:
        if self.state != "review" or not self.view.indexAt(pos).isValid():
            return
        menu = QMenu(self)
        for action in self.override_actions.values():
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.preview_action)
        menu.exec(self.view.viewport().mapToGlobal(pos))

    @Slot()
    def preview(self) -> None:
        current = self.view.currentIndex()
        if not current.isValid():
            return
        rows = [self.filter.mapToSource(self.filter.index(i, 0)).row() for i in range(self.filter.rowCount())]
        paths = [self.photos.decision(r).path for r in rows]
        def override(i: int, value: Override | None) -> None:
            self.photos.set_override([rows[i]], value)

        # As on the grid, the user's say waits for the review: not on a scan's photos still arriving.
        dialog = dialogs.Preview(self, paths, current.row(), lambda i: describe(self.photos.decision(rows[i])),
                                 override if self.state == "review" else None)
        dialog.exec()
        dialog.deleteLater()  # its photo and its decoding thread with it

    # --- apply and undo ---

    @Slot()
    def apply(self) -> None:
        if self.state != "review" or self.folder is None:
            return
        decisions = self.photos.decisions()
        copy = self.copy_radio.isChecked()
        if not dialogs.confirm_apply(self, decisions, copy, self.folder, self._unscanned or 0):
            return
        folder = self.folder
        todo = [d for d in decisions if d.folder]
        self.status.clearMessage()  # the scan's line is not news while files move
        self._apply_records = []
        self._scan_started = time.monotonic()
        self.progress_bar.setRange(0, len(todo))
        self.progress_bar.setValue(0)
        def job(cancel: threading.Event) -> Iterator[object]:
            try:
                yield from apply_plan(folder, todo, copy, cancel)
            except Exception:
                # Stopped part way (a full disk, a bug), what did move can be undone: the Undo button must know it.
                with contextlib.suppress(CatsortError, OSError):
                    yield folder_state(folder)
                raise
            yield folder_state(folder)

        self._start("applying", job)

    @Slot()
    def undo(self) -> None:
        if self.folder is None or self._job is not None:
            return
        folder = self.folder

        def job(cancel: threading.Event) -> Iterator[object]:
            yield undo_runs(folder)
            yield folder_state(folder)

        self.progress_bar.setRange(0, 0)
        self._scan_started = time.monotonic()
        self._start("undoing", job)

    def _show_undone(self, result: UndoSummary) -> None:
        copies = f"removed {dialogs.plural(result.removed_copies, 'copy', 'copies')}"
        if result.restored or not result.removed_copies:
            text = f"Put {dialogs.plural(result.restored, 'photo')} back" + (f" and {copies}" if result.removed_copies else "")
        else:  # an undone copy: the originals never left
            text = copies.capitalize()
        if result.problems or result.warnings:
            self._undo_dialog = ("Undone, with problems", text + ".\n\n" + "\n".join(result.problems + result.warnings))
            text += ", with problems"
        elif result.runs == 0:
            self._undo_dialog = ("Nothing to undo", f"No sort to undo in {folder_name(self.folder)}.")
            text = "Nothing to undo"
        self.status.showMessage(text + ".", 15000)
        self._rescan_note = text + ". "
        self._rescan_when_done = True  # the photos are back where they were: show them again (their verdicts kept)


def stopped_scan_text(looked: int, total: int, failed: bool, verb: dialogs.Verb, sorted_since: bool = False) -> str:
    """The banner's account of a scan that did not finish: how far it got, and what the action acts on
    (or, once a sort has taken the photos looked at away, what is left to do)."""
    rest = total - looked
    if sorted_since:
        return (f"The scan was stopped before the end: {dialogs.plural(rest, 'photo')} of this folder "
                f"{'was' if rest == 1 else 'were'} not looked at. Scan again to sort {'it' if rest == 1 else 'them'} too.")
    how = "The scan stopped on an error" if failed else "You stopped the scan"
    if total == 0 or looked == 0:
        return f"{how} before any photo was looked at: there is nothing to {verb.name.lower()} yet."
    return (f"{how}: only {looked:,} of {dialogs.plural(total, 'photo')} were looked at. {verb.name} acts on those alone; "
            f"the other {dialogs.staying(rest)}.")


def folder_name(folder: Path | None) -> str:
    return str(folder) if folder else "this folder"


def _settled_note(runs: int, warnings: list[str]) -> str:
    """The status line's account of interrupted runs settled before a scan ("" if there were none)."""
    note = ""
    if runs:
        what = "an interrupted sort was" if runs == 1 else f"{runs} interrupted sorts were"
        # Not "puts them back": the run may have copied, and Undo then removes its copies.
        note = f" · {what} settled first: each photo is at its old or its new place, and Undo takes back what {'it' if runs == 1 else 'they'} did"
    return note + "".join(f" · {w}" for w in warnings)


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


def install_excepthook(window: MainWindow) -> None:
    """A bug in the window shows a dialog with the details instead of killing the app silently."""

    def hook(kind, value, tb) -> None:
        details = "".join(traceback.format_exception(kind, value, tb))
        print(details, file=sys.stderr)
        dialogs.show_error(window, "Something went wrong", f"{kind.__name__}: {value}\n\nPlease report this; your files are safe.")

    sys.excepthook = hook

