"""The list model behind the thumbnail grid: predictions, the user's overrides, and the plan over them.

It holds what the core produced and asks the core's :class:`~catsort.plan.Planner` for every
decision; it never decides anything itself. ``data()`` never touches the disk. A threshold or
override change re-plans every photo (pure and fast) and emits one ``dataChanged``, so the
selection and the scroll position survive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt

from catsort.classify import Prediction
from catsort.plan import Decision, Override, Planner


def shown(text: object) -> str:
    """``text`` as Qt can show it: a file name's bytes that are not UTF-8 (an old camera, a Windows share) are kept by
    Python as lone surrogates, which Qt drops without a trace (``chat_\\xe9t\\xe9.jpg`` became ``chat_t.jpg``); each
    shows here as the replacement mark instead."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


PredictionRole = Qt.ItemDataRole.UserRole + 1
DecisionRole = Qt.ItemDataRole.UserRole + 2
GroupRole = Qt.ItemDataRole.UserRole + 3

GROUPS = ("cats", "dogs", "unsure", "other", "unreadable")
GROUP_TITLES = {"all": "All", "cats": "Cats", "dogs": "Dogs", "unsure": "Not sure", "other": "Other", "unreadable": "Unreadable"}
LABEL_TITLES = {"cat": "Cat", "dog": "Dog", "other": "Other"}
OVERRIDE_CHOICES: dict[str, tuple[str, tuple[str, ...], Override | None]] = {
    "cat": ("It's a cat (goes to cats/)", ("C",), "cat"),
    "dog": ("It's a dog (goes to dogs/)", ("D",), "dog"),
    "stay": ("Leave in place", ("O", "Delete"), "stay"),
    "model": ("Back to the model's verdict", ("U",), None),
}
"""The user's say on a photo: its words, its keys and the override (None: the model's verdict again), one
table for the grid's context menu and keys and the preview's buttons and keys."""


def group_of(d: Decision) -> str:
    """Which group of the review a decision shows in."""
    if d.action == "error":
        return "unreadable"
    if d.folder is not None:
        return d.folder
    if d.copied_to is not None:  # with the photos of its kind, though it is not copied again
        return d.copied_to.split("/", 1)[0]
    return "unsure" if d.unsure else "other"


def describe(d: Decision) -> str:
    """A thumbnail's caption: the verdict and how sure the model is, or the user's say."""
    if d.action == "error":
        return "Unreadable"
    if d.overridden:
        return {"cats": "Cat (you)", "dogs": "Dog (you)"}.get(d.folder or "", "Stays (you)")
    # Whole percents rounded down: 99.7% shows as 99%, never as a certainty the model does not have.
    label = LABEL_TITLES.get(d.prediction or "", d.prediction or "")
    if d.copied_to is not None:
        return f"{label} · copied"  # "copied before" was cut short in the badge; the tooltip says it in full
    guess = f"Maybe {label.lower()}" if d.unsure else label  # in words, not only in the badge's colour
    return f"{guess} {int((d.confidence or 0) * 100)}%"


class PhotoModel(QAbstractListModel):
    PREDICTION_ROLE = PredictionRole

    def __init__(self, labels: tuple[str, ...], threshold: float, parent=None) -> None:
        super().__init__(parent)
        self._labels = labels
        self._threshold = threshold
        self._copy = False
        self._taken: Mapping[str, Iterable[str]] = {}
        self._copied: Mapping[Path, str] = {}
        self._predictions: list[Prediction] = []
        self._decisions: list[Decision] = []
        self._overrides: dict[Path, Override] = {}
        self._planner = Planner(labels, threshold)
        self._counts: Counter[str] = Counter()
        """Photos per group, kept up to date batch by batch (20,000 photos are not recounted per batch)."""

    # --- Qt model interface ---

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._predictions)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        row = index.row()
        d = self._decisions[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return shown(d.path.name)
        if role == DecisionRole:
            return d
        if role == PredictionRole:
            return self._predictions[row]
        if role == GroupRole:
            return group_of(d)
        if role == Qt.ItemDataRole.ToolTipRole:
            where = f" → {d.folder}/{d.name}" if d.folder else (
                f" (an earlier run's copy is {d.copied_to}: not copied again)" if d.copied_to else
                " (stays where it is)" if d.action != "error" else "")
            reason = f"\n{d.error}" if d.error else ""
            return shown(f"{d.path}\n{describe(d)}{where}{reason}")
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return shown(f"{d.path.name}: {describe(d)}")
        return None

    # --- what the window changes ---

    def clear(self, keep_overrides: bool = False) -> None:
        """Empty the review; ``keep_overrides`` for a rescan of the same folder (after an undo, say), where the
        user's say about each photo still holds and applies as its verdict arrives again."""
        self.beginResetModel()
        self._predictions, self._decisions = [], []
        if not keep_overrides:
            self._overrides = {}
        self._counts = Counter()
        self._taken, self._copied = {}, {}
        self._planner = self._new_planner()
        self.endResetModel()

    def set_taken(self, taken: Mapping[str, Iterable[str]], copied: Mapping[Path, str]) -> None:
        """The names already in cats/ and dogs/ (the plan gives moved photos other ones), and the photos an earlier
        copy run copied (``apply.copied_before``: a copy leaves them)."""
        self._taken, self._copied = taken, copied
        self._replan()

    def add(self, predictions: list[Prediction]) -> None:
        """Append one batch of results: one ``beginInsertRows`` for the whole batch."""
        if not predictions:
            return
        first = len(self._predictions)
        self.beginInsertRows(QModelIndex(), first, first + len(predictions) - 1)
        self._predictions.extend(predictions)
        new = [self._planner.decide(p, self._overrides.get(p.path)) for p in predictions]
        self._decisions.extend(new)
        self._counts.update(group_of(d) for d in new)
        self.endInsertRows()

    def set_threshold(self, threshold: float) -> None:
        self._threshold = threshold
        self._replan()

    def set_copy(self, copy: bool) -> None:
        self._copy = copy
        self._replan()

    def set_override(self, rows: Iterable[int], override: Override | None) -> int:
        """The user's say on these photos (None: back to the model's verdict); unreadable ones are left as they are.
        Returns how many took it."""
        taken = 0
        for row in rows:
            path = self._predictions[row].path
            if self._predictions[row].probabilities is None:
                continue
            taken += 1
            if override is None:
                self._overrides.pop(path, None)
            else:
                self._overrides[path] = override
        self._replan()
        return taken

    def remove_paths(self, paths: set[str], outputs: tuple[Mapping[str, Iterable[str]], Mapping[Path, str]] | None = None) -> None:
        """Drop photos that are no longer where they were scanned (moved by an apply), and re-plan the
        rest once, with what the apply left in cats/ and dogs/ when the job read it (``outputs``, as :meth:`set_taken`
        takes them): a :meth:`set_taken` first would plan every row only for this to plan them again. Their overrides
        stay: an undo brings each photo back to its path, and the user's say about it with it."""
        if outputs is not None:
            self._taken, self._copied = outputs
        self.beginResetModel()
        keep = [i for i, p in enumerate(self._predictions) if str(p.path) not in paths]
        self._predictions = [self._predictions[i] for i in keep]
        self._decisions = self._plan_all()
        self.endResetModel()

    def _new_planner(self) -> Planner:
        return Planner(self._labels, self._threshold, self._copy, self._taken, self._copied)

    def _plan_all(self) -> list[Decision]:
        self._planner = self._new_planner()
        decisions = self._planner.plan_all(self._predictions, self._overrides)
        self._counts = Counter(group_of(d) for d in decisions)
        return decisions

    def _replan(self) -> None:
        self._decisions = self._plan_all()
        if self._decisions:
            self.dataChanged.emit(self.index(0), self.index(len(self._decisions) - 1))

    # --- what the window reads ---

    @property
    def threshold(self) -> float:
        return self._threshold

    def decisions(self) -> list[Decision]:
        return list(self._decisions)

    def decision(self, row: int) -> Decision:
        return self._decisions[row]

    def counts(self) -> Counter[str]:
        return Counter(self._counts)

    def acting(self) -> int:
        """Photos the action moves or copies: the cats/ and dogs/ groups, but for those an earlier copy run copied."""
        return sum(d.folder is not None for d in self._decisions)


class GroupFilter(QSortFilterProxyModel):
    """Shows one group of the review (or all of them): in the folder's order, but *Not sure* the likeliest first,
    where a user looking for the pets the threshold held back finds them."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._group = "all"

    def set_group(self, group: str) -> None:
        self.beginFilterChange()
        self._group = group
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        if group == "unsure":
            self.sort(0, Qt.SortOrder.DescendingOrder)
        else:
            self.sort(-1)  # the source's order again (descending, -1 would reverse it)

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802 (Qt's name)
        return (left.data(DecisionRole).confidence or 0.0) < (right.data(DecisionRole).confidence or 0.0)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if self._group == "all":
            return True
        return self.sourceModel().index(source_row, 0, source_parent).data(GroupRole) == self._group
