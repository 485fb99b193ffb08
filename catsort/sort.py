"""A whole headless job: predict -> plan -> apply composed as one stream, with progress.

The window runs the same three phases apart (it shows the predictions and lets the user change
the plan before applying it); here each photo is planned and moved as soon as the model has seen
it, so memory stays flat and the first files move while the rest still decode.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path

from catsort.apply import Record, Started, apply_plan, copied_before, preview, settle_earlier_runs
from catsort.errors import CatsortError, FolderError, FolderVanished, InterruptedBeforeMoving, interrupted_before_moving
from catsort.fileops import RunStopped, check_folder, check_not_busy, check_writable_places, write_problem
from catsort.layout import made_by_catsort, output_folder_line
from catsort.model import Classifier
from catsort.plan import Planner
from catsort.predict import FolderScan, predict, scan_folder
from catsort.scan import taken_names


@dataclass
class SortOptions:
    recursive: bool = False
    copy: bool = False
    dry_run: bool = False
    threshold: float | None = None
    jobs: int | None = None
    trust_journals: bool = False


@dataclass
class Summary:
    folder: Path
    threshold: float
    dry_run: bool
    records: list[Record] = field(default_factory=list)
    settled_runs: int = 0
    warnings: list[str] = field(default_factory=list)
    journal: Path | None = None
    stopped: str | None = None
    """Why the run stopped part way (disk full, read-only, interrupted): one line, with how to undo what was done."""
    interrupted: bool = False
    """Stopped by Ctrl-C (SIGINT) once files were being handled; ``records`` holds the ones that were."""
    total: int = 0
    """Files the scan found; more than ``len(records)`` when the run stopped part way."""
    would_refuse: str | None = None
    """A dry run's folder that a real run could change nothing in (read-only): the line that says why."""

    def count(self, action: str) -> int:
        return sum(r.action == action for r in self.records)

    @property
    def copied_before(self) -> int:
        """Photos left in place because an earlier copy run's copy of them is still there (the record names it)."""
        return sum(r.action == "stay" and r.destination is not None for r in self.records)

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.action == "error"]


Progress = Callable[[int, int, Record], None]
"""Called after each file with (files done, files total, that file's record)."""


def sort_folder(root: Path, classifier: Classifier, options: SortOptions, progress: Progress | None = None) -> Summary:
    try:
        summary, folder, items, predictions = _started(root, classifier, options)
    except KeyboardInterrupt:
        raise InterruptedBeforeMoving(interrupted_before_moving(root)) from None
    # Closed here, however the run ends: a stop part way leaves the predictions suspended, and the collector
    # could finalise them later in one of their own decoding threads, which cannot then wait for themselves.
    with closing(predictions):
        return _carried_out(summary, folder, items, options, progress)


def _started(root: Path, classifier: Classifier, options: SortOptions) -> tuple[Summary, FolderScan, Iterator, Generator]:
    """Everything before the first move: earlier runs settled, the folder scanned, the first verdict in (the lock
    and the journal come with the first item of the returned iterator); the last item is the stream of verdicts,
    for the caller to close."""
    root = check_folder(root)
    line = output_folder_line(root)
    if line and made_by_catsort(root):  # the window asks when nothing says so; a terminal cannot
        raise FolderError(line)
    check_writable_places(root)  # a dry run says what the real run would: a linked cats/ is refused
    if options.dry_run:
        check_not_busy(root)  # a real run takes the lock and is refused the same way
    # An interrupted run is settled before the scan, so the scan sees where its files ended up.
    settled, warnings, seen = (0, [], None) if options.dry_run else settle_earlier_runs(root, options.trust_journals)
    if line:  # a folder of the user's own, likely: sorted, and the summary says what the window would have asked
        warnings = [line, *warnings]
    folder = scan_folder(root, options.recursive)
    threshold = classifier.card.threshold if options.threshold is None else options.threshold
    summary = Summary(folder.root, threshold, options.dry_run, settled_runs=settled, warnings=warnings, total=folder.total,
                      would_refuse=write_problem(folder.root) if options.dry_run else None)
    copied = copied_before(folder.root, options.trust_journals) if options.copy else {}
    planner = Planner(classifier.card.labels, threshold, options.copy, taken_names(folder.root), copied)
    predictions = predict(folder, classifier, options.jobs)
    decisions = (planner.decide(p) for p in predictions)
    try:
        # The first verdict before the lock and the journal: a model that cannot be used (it loads in the
        # background while the first photos decode) is then refused before anything in the folder is touched.
        decisions = chain(list(islice(decisions, 1)), decisions)
        wait = getattr(classifier, "wait", None)
        if wait is not None and folder.files:
            wait()
    except BaseException:
        predictions.close()
        raise
    if options.dry_run:
        items = (preview(folder.root, d) for d in decisions)
    else:
        items = apply_plan(folder.root, decisions, options.copy, trust_journals=options.trust_journals, settled=seen)
    return summary, folder, items, predictions


def _carried_out(summary: Summary, folder: FolderScan, items: Iterator, options: SortOptions, progress: Progress | None) -> Summary:
    """The moves (or a dry run's previews), with a stop part way turned into the summary's one line."""
    try:
        for item in items:
            if isinstance(item, Started):
                summary.settled_runs += item.settled_runs  # a run killed since the first settling
                summary.warnings += item.warnings
                summary.journal = item.journal
                continue
            summary.records.append(item)
            if progress:
                progress(len(summary.records), folder.total, item)
    except CatsortError as exc:
        if summary.journal is None:
            raise  # refused before the run started: nothing was touched
        # A full disk says what was done and how to undo it; anything else (the model failing part way) is told so here.
        if isinstance(exc, RunStopped):
            summary.stopped = str(exc)
        elif isinstance(exc, FolderVanished):
            done = summary.count("move") + summary.count("copy")
            summary.stopped = f"{exc}; stopped after {len(summary.records)} of {folder.total} files" + (
                f" (should it come back, catsort --undo {folder.root} takes back what was done)" if done else "")
        else:
            summary.stopped = _undoable_stop(f"{exc}; stopped", summary, folder)
    except KeyboardInterrupt:
        # Raised in whichever frame the main thread was in: close the chain so the journal ends cleanly
        # (apply_plan aborts it itself when the interrupt arrived inside it).
        close = getattr(items, "close", None)
        if close is not None:
            close()
        summary.interrupted = True
        done = len(summary.records)
        if options.dry_run:
            summary.stopped = f"interrupted after {done} of {folder.total} files; nothing was changed (dry run)"
        elif summary.journal is None:
            summary.stopped = interrupted_before_moving(folder.root)
        else:
            summary.stopped = _undoable_stop("interrupted", summary, folder)
    return summary


def _undoable_stop(what: str, summary: Summary, folder: FolderScan) -> str:
    """The stop line of a run that had begun handling files: how far it got, and how to take back what it moved."""
    done = f"{what} after {len(summary.records)} of {folder.total} files"
    # The journal, not the records: a photo moved an instant before the interrupt has no record yet, but the
    # journal holding its move is kept (one that journaled no move or copy is removed when the run ends).
    if not (summary.count("move") or summary.count("copy")) and not (summary.journal and summary.journal.exists()):
        return f"{done}; no photo was moved or copied, nothing was changed in {folder.root}"
    return f"{done}; every file is at its old or its new place. Undo what was done with: catsort --undo {folder.root}"
