"""Run a whole job over one folder: scan -> classify -> decide -> move, streaming, with progress.

The CLI and the GUI are thin shells over :func:`sort_folder` and :func:`undo_runs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from catsort.classify import classify_files
from catsort.fileops import FileOpError, Journal, folder_lock, journals, settle_interrupted, undo
from catsort.model import Classifier
from catsort.plan import decide
from catsort.scan import Unreadable, scan


class FolderError(Exception):
    """The folder to sort cannot be used at all."""


@dataclass(frozen=True)
class Record:
    """One line of the report: what happened to one file."""

    path: str
    prediction: str | None
    confidence: float | None
    action: str
    destination: str | None
    error: str | None


@dataclass
class SortOptions:
    recursive: bool = False
    copy: bool = False
    dry_run: bool = False
    threshold: float | None = None
    jobs: int | None = None


@dataclass
class Summary:
    folder: Path
    threshold: float
    dry_run: bool
    records: list[Record] = field(default_factory=list)
    settled_runs: int = 0
    journal: Path | None = None

    def count(self, action: str) -> int:
        return sum(r.action == action for r in self.records)

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.action == "error"]


Progress = Callable[[int, int, Record], None]
"""Called after each file with (files done, files total, that file's record)."""


def _check_folder(root: Path) -> Path:
    if not root.exists():
        raise FolderError(f"{root}: no such folder")
    if not root.is_dir():
        raise FolderError(f"{root}: not a folder")
    return root.resolve()


def sort_folder(root: Path, classifier: Classifier, options: SortOptions, progress: Progress | None = None) -> Summary:
    root = _check_folder(root)
    threshold = classifier.card.threshold if options.threshold is None else options.threshold
    summary = Summary(root, threshold, options.dry_run)
    if options.dry_run:
        _run(root, classifier, options, summary, None, progress)
        return summary
    try:
        with folder_lock(root):
            summary.settled_runs = settle_interrupted(root)
            journal = Journal.start(root, "copy" if options.copy else "move")
            summary.journal = journal.path
            try:
                _run(root, classifier, options, summary, journal, progress)
            except BaseException:
                journal.abort()
                raise
            journal.close()
    except PermissionError as exc:
        raise FolderError(f"{root}: cannot write the undo journal there ({exc.strerror})") from None
    return summary


def _run(root: Path, classifier: Classifier, options: SortOptions, summary: Summary, journal: Journal | None, progress: Progress | None) -> None:
    found = list(scan(root, options.recursive))
    paths = [f for f in found if isinstance(f, Path)]
    total = len(found)

    def add(record: Record) -> None:
        summary.records.append(record)
        if progress:
            progress(len(summary.records), total, record)

    for bad in found:
        if isinstance(bad, Unreadable):
            add(Record(str(bad.path), None, None, "error", None, bad.reason))
    for pred in classify_files(paths, classifier, options.jobs):
        d = decide(pred, classifier.card.labels, summary.threshold, options.copy)
        destination, error, action = None, d.error, d.action
        if d.folder is not None:
            if journal is None:
                destination = str(root / d.folder / d.path.name)
            else:
                try:
                    destination = str(journal.transfer(d.path, root / d.folder, d.action))
                except FileOpError as exc:
                    action, error = "error", str(exc)
        add(Record(str(d.path), d.prediction, d.confidence, action, destination, error))


@dataclass
class UndoSummary:
    runs: int = 0
    restored: int = 0
    removed_copies: int = 0
    problems: list[str] = field(default_factory=list)


def undo_runs(root: Path, all_runs: bool = False) -> UndoSummary:
    """Undo the newest run not yet undone (or all of them), newest first. Harmless to repeat."""
    root = _check_folder(root)
    result = UndoSummary()
    with folder_lock(root):
        settle_interrupted(root)
        # A run killed before its first move leaves a journal with nothing in it: nothing to undo there.
        pending = [j for j in journals(root) if not j.undone and j.intents]
        for state in reversed(pending if all_runs else pending[-1:]):
            done = undo(root, state)
            result.runs += 1
            result.restored += done.restored
            result.removed_copies += done.removed_copies
            result.problems += done.problems
    return result
