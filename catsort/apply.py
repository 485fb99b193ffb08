"""The apply phase: carry out a plan's moves or copies through the journal, and undo them.

Under the folder's lock, after settling whatever an interrupted run left, one journaled
transfer per decision. A file that vanished or changed since it was scanned is not moved on an
old verdict: it becomes an error record and the run goes on. Both shells call exactly these
functions, so every safety property of ``--headless`` holds in the window too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from catsort.errors import FileOpError, FolderError
from catsort.fileops import (
    Journal,
    JournalsSeen,
    JournalState,
    RunStopped,
    UndoResult,
    check_folder,
    check_still_there,
    folder_identity,
    folder_lock,
    journal_paths,
    journals_seen,
    os_reason,
    read_journals,
    settle_interrupted,
    settle_open,
    undo,
    write_problem,
)
from catsort.plan import Decision


@dataclass(frozen=True)
class Record:
    """One line of the report: what happened to one file."""

    path: str
    prediction: str | None
    confidence: float | None
    action: str
    destination: str | None
    error: str | None


@dataclass(frozen=True)
class Started:
    """The first item an apply yields, once it holds the lock: what settling found."""

    settled_runs: int
    warnings: list[str]
    journal: Path


def _record(d: Decision, destination: str | None = None, error: str | None = None) -> Record:
    action = "error" if error else d.action
    return Record(str(d.path), d.prediction, d.confidence, action, destination, error or d.error)


def preview(root: Path, d: Decision) -> Record:
    """What applying ``d`` would do (a dry run), with the destination name the run would write."""
    return _record(d, str(root / d.folder / d.name) if d.folder and d.name else _copy_of(root, d))


def _copy_of(root: Path, d: Decision) -> str | None:
    """A photo left because an earlier run copied it: its record's destination is that copy."""
    return str(root / d.copied_to) if d.copied_to else None


CHANGED_SINCE_SCAN = "changed since the scan; left in place (scan again to sort it)"
"""A record's error for a photo whose size or time changed after its verdict: the window scans again when it sees it."""


def _changed_since_scan(d: Decision) -> str | None:
    try:
        st = os.lstat(d.path)
    except FileNotFoundError:
        return "vanished since the scan; nothing done"
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if d.fingerprint is not None and (st.st_size, st.st_mtime_ns) != d.fingerprint:
        return CHANGED_SINCE_SCAN
    return None


def settle_earlier_runs(root: Path, trust_journals: bool = False) -> tuple[int, list[str], JournalsSeen | None]:
    """Finish or roll back what interrupted runs left in ``root``, under its lock: (runs settled, warnings,
    the journals as they were left, for :func:`apply_plan` to skip).

    Called before a scan: settling moves files, and a scan taken before it lists a photo at the
    place settling then moves it from, so the run would report it "vanished since the scan"
    (the kill -9 loop of tests/test_crash.py saw it about once in ten runs).
    """
    if not journal_paths(root):
        return 0, [], None  # nothing to settle, and a folder catsort never ran in stays untouched (no lock file)
    try:
        with folder_lock(root):
            settled, warnings = settle_interrupted(root, trust_journals)
            return settled, warnings, journals_seen(root)
    except OSError as exc:
        raise FolderError(f"{root}: cannot settle the undo journals there: {os_reason(exc)}") from None


def apply_plan(root: Path, decisions: Iterable[Decision], copy: bool = False, cancel: threading.Event | None = None,
               trust_journals: bool = False, settled: JournalsSeen | None = None) -> Iterator[Started | Record]:
    """Yield :class:`Started`, then one :class:`Record` per decision, until done or ``cancel`` is set.

    ``decisions`` may be a lazy stream (``--headless`` plans each photo as the model sees it).
    ``settled``: the journals as :func:`settle_earlier_runs` left them; those unchanged are not read again.
    Stopping early (cancel, or closing the generator) finishes the current file and ends the
    journal cleanly; an exception settles the journal first. Either way the run can be undone.

    A fault of the whole disk (full, read-only, the journal cannot be written) stops the run with
    :class:`~catsort.fileops.RunStopped`: one line saying where, why, how many files were done and
    how to undo them. Before the first file it is a refusal: nothing was touched.
    """
    done, identity = 0, None
    try:
        with folder_lock(root):
            count, warnings = settle_interrupted(root, trust_journals, settled)
            journal = Journal.start(root, "copy" if copy else "move")
            identity = folder_identity(root)
            try:
                yield Started(count, warnings, journal.path)
                for d in decisions:
                    if cancel is not None and cancel.is_set():
                        break
                    record = _carry_out(root, journal, d)
                    if record.error is not None:
                        check_still_there(root, identity)
                    done += record.action in ("move", "copy")
                    yield record
            except GeneratorExit:
                try:
                    journal.close()
                except RunStopped:
                    pass  # the journal stays open; the next run settles it
                raise
            except RunStopped as exc:
                ended = journal.abort()
                check_still_there(root, identity)  # a disk unplugged (or its FUSE daemon killed) fails the journal first
                raise RunStopped(_stopped_line(root, exc, done, copy, ended)) from None
            except BaseException:
                journal.abort()
                raise
            try:
                journal.close()
            except RunStopped as exc:
                raise RunStopped(_stopped_line(root, exc, done, copy, False)) from None
    except OSError as exc:
        if identity is not None:
            check_still_there(root, identity)
        raise FolderError(f"{root}: cannot write the undo journal there: {os_reason(exc)}") from None


def _stopped_line(root: Path, exc: RunStopped, done: int, copy: bool, ended: bool) -> str:
    verb = "copied" if copy else "moved"
    if not done:
        return f"{exc}; stopped before any file was {verb}, nothing was changed: make room (or fix the folder) and run again"
    tail = "" if ended else " (its journal is settled by the next catsort run)"
    return (f"{exc}; stopped after {done} file(s) {verb}, each at its old or its new place{tail}. "
            f"Make room and run again to sort the rest, or undo with: catsort --undo {root}")


def _carry_out(root: Path, journal: Journal, d: Decision) -> Record:
    if d.folder is None:
        return _record(d, _copy_of(root, d))
    problem = _changed_since_scan(d)
    if problem:
        return _record(d, error=problem)
    try:
        return _record(d, str(journal.transfer(d.path, root / d.folder, d.action, d.name)))
    except FileOpError as exc:
        return _record(d, error=str(exc))


@dataclass
class UndoSummary:
    runs: int = 0
    restored: int = 0
    removed_copies: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class UndoStopped(RunStopped):
    """An undo that stopped part way (disk full, read-only): ``summary`` is what it did; run it again later."""

    def __init__(self, message: str, summary: UndoSummary) -> None:
        super().__init__(message)
        self.summary = summary


class UndoInterrupted(KeyboardInterrupt):
    """Ctrl-C part way through an undo: ``summary`` is what it did before; running it again finishes."""

    def __init__(self, summary: UndoSummary) -> None:
        super().__init__()
        self.summary = summary


def undo_runs(root: Path, all_runs: bool = False, trust_journals: bool = False) -> UndoSummary:
    """Undo the newest run not yet undone (or all of them), newest first. Harmless to repeat."""
    root = check_folder(root)
    result = UndoSummary()
    if not journal_paths(root):
        return result  # nothing to undo: said so even where nothing could be written (a read-only folder)
    if write_problem(root):  # the lock cannot be taken here: refuse only if there is a run to undo
        states, result.warnings = read_journals(root, trust_journals)
        if not _pending(states):
            return result
    try:
        with folder_lock(root):
            _undo_pending(root, all_runs, trust_journals, result)
    except KeyboardInterrupt:
        raise UndoInterrupted(result) from None
    return result


def _undo_pending(root: Path, all_runs: bool, trust_journals: bool, result: UndoSummary) -> None:
    """The undo itself, under the folder's lock, counted into ``result`` file by file."""
    states, result.warnings = read_journals(root, trust_journals)
    settle_open(root, states, unmarked_ok=True)  # on the journals just read and checked: each is read once
    pending = _pending(states)
    for state in reversed(pending if all_runs else pending[-1:]):
        result.runs += 1
        done = UndoResult()
        try:
            undo(root, state, done)
        finally:
            result.restored += done.restored
            result.removed_copies += done.removed_copies
            result.problems += done.problems
        if done.stopped:
            copies = f", removed {result.removed_copies} copies" if result.removed_copies else ""
            raise UndoStopped(f"{done.stopped}; undo stopped after restoring {result.restored} file(s){copies}, "
                              f"each at one place: make room and run catsort --undo again", result)


def copied_before(root: Path, trust_journals: bool = False) -> dict[Path, str]:
    """The photos of ``root`` an earlier copy run (not undone) copied, whose copy is still where it put it, the
    same size, and the photo unchanged since: each photo's path -> its copy's (``cats/IMG_1.jpg``). A copy run
    leaves them where they are, so that sorting again (new photos since) does not copy them a second time."""
    if not journal_paths(root):
        return {}
    states, _ = read_journals(root, trust_journals)  # an untrusted journal is said by the run's own reading of it
    copied: dict[Path, str] = {}
    for state in states:
        if state.undone:
            continue
        for intent in state.intents:
            if intent.op == "copy" and intent.done and not intent.abandoned:
                copied[root / intent.src] = intent.dst
    return {src: dst for src, dst in copied.items() if _same_size(src, dst, root)}


def _same_size(src: Path, dst: str, root: Path) -> bool:
    try:
        return os.lstat(src).st_size == os.lstat(root / dst).st_size
    except OSError:
        return False


def last_undoable_run(root: Path) -> Path | None:
    """The journal ``undo_runs`` would undo next, or None: lets a window enable its Undo button.

    Newest first, reading only as many journals as it must (a folder sorted often has many, each
    thousands of signed lines).
    """
    for path in reversed(journal_paths(root)):
        states, _ = read_journals(root, paths=[path])
        if states and _transferred(states[0]) and not states[0].undone:
            return path
    return None


def _pending(states: list[JournalState]) -> list[JournalState]:
    """The runs ``--undo`` can still take back, oldest first. A run killed before its first move leaves a journal
    with nothing (or only the creation of dogs/) in it: nothing to undo there, and --undo means the run before."""
    return [j for j in states if not j.undone and _transferred(j)]


def _transferred(state: JournalState) -> bool:
    """Whether a run journaled a move or a copy it did not give up on, and so may have something ``--undo`` can take
    back. A run whose every move failed (a cats/ it may not write in) is not the run ``--undo`` means."""
    return any(intent.op != "mkdir" and not intent.abandoned for intent in state.intents)
