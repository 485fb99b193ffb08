"""Moves and copies that never overwrite and never lose a photo, journaled before they happen.

Each run writes ``.catsort/runs/<time>-<pid>.jsonl`` in the sorted folder. Before a file is
touched, a line naming the operation (and the file's inode and size) is written and fsynced.
A same-filesystem move is ``link(src, dst)`` then ``unlink(src)``: ``link`` refuses an existing
name, so nothing is ever overwritten, and a crash between the two leaves two names for one inode,
which the next run settles. A copy (or a move across filesystems) goes to a hidden temporary
file, is fsynced and verified by sha256, and only then linked under its final name.

Whatever the journal says, recovery and undo look at the filesystem to decide what happened,
so running them twice, or after a crash in the middle of either, is harmless.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from catsort.checksum import file_sha256
from catsort.plan import candidate_names

JOURNAL_FOLDER = ".catsort"
_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS, errno.EACCES}


class FileOpError(Exception):
    """A single file could not be moved or copied; ``str()`` is the one-line reason."""


class FolderBusyError(Exception):
    """Another catsort process holds the folder's lock."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _fsync_folder(path: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _place(src: Path, dst: Path) -> None:
    """Make the file at ``src`` appear at ``dst`` and disappear from ``src`` on one filesystem.

    Raises FileExistsError if ``dst`` is taken, and OSError(EXDEV) across filesystems.
    """
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_HARDLINKS:
            raise
        # Filesystems without hard links (FAT, some network shares): check, then rename.
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def _copy_verified(src: Path, dst: Path, tmp: Path) -> str:
    """Copy ``src`` to ``dst`` via ``tmp``; fsync, compare sha256 and size, then link into place."""
    digest = hashlib.sha256()
    with src.open("rb") as fin, tmp.open("xb") as fout:
        for chunk in iter(lambda: fin.read(1 << 20), b""):
            digest.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    shutil.copystat(src, tmp)
    expected = digest.hexdigest()
    if tmp.stat().st_size != src.stat().st_size or file_sha256(tmp) != expected:
        tmp.unlink()
        raise FileOpError("copy verification failed: the copy differs from the original")
    return expected


@dataclass
class Intent:
    """One journaled operation, as read back from a journal."""

    seq: int
    op: str
    src: str
    dst: str
    size: int = 0
    ino: int = 0
    dev: int = 0
    tmp: str | None = None
    sha256: str | None = None
    abandoned: bool = False
    done: bool = False


@dataclass
class JournalState:
    path: Path
    intents: list[Intent] = field(default_factory=list)
    ended: bool = False
    undone: bool = False

    @classmethod
    def read(cls, path: Path) -> "JournalState":
        state = cls(path)
        by_seq: dict[int, Intent] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a power cut: the operation it announced never started
            if "op" in rec:
                intent = Intent(**{k: rec[k] for k in ("seq", "op", "src", "dst", "size", "ino", "dev", "tmp") if k in rec})
                by_seq[intent.seq] = intent
                state.intents.append(intent)
            elif "seq" in rec and rec["seq"] in by_seq:
                intent = by_seq[rec["seq"]]
                intent.sha256 = rec.get("verified", intent.sha256)
                intent.abandoned |= bool(rec.get("abandoned"))
                intent.done |= bool(rec.get("done"))
            state.ended |= "end" in rec
            state.undone |= "undone" in rec
        return state


class Journal:
    """Append-only JSON-lines log of one run's operations."""

    def __init__(self, root: Path, path: Path) -> None:
        self.root = root
        self.path = path
        self.id = path.stem
        self._file = path.open("a", encoding="utf-8")
        self._seq = 0
        self._touched = False

    @classmethod
    def start(cls, root: Path, mode: str) -> "Journal":
        folder = root / JOURNAL_FOLDER / "runs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 1_000_000_000:09d}-{os.getpid()}.jsonl"
        journal = cls(root, path)
        journal.write({"catsort_journal": 1, "started": _now(), "mode": mode}, sync=True)
        _fsync_folder(folder)
        return journal

    def write(self, record: dict, sync: bool) -> None:
        self._touched |= "op" in record
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)

    def close(self) -> None:
        """Mark the run complete; a run that touched nothing leaves no journal (nothing to undo)."""
        if self._touched:
            self.write({"end": _now()}, sync=True)
            self._file.close()
        else:
            self._file.close()
            self.path.unlink()

    def abort(self) -> None:
        """After an interruption: settle whatever operation was cut short, then mark the run ended."""
        if not self._touched:
            self.close()
            return
        self._file.close()
        settle(self.root, JournalState.read(self.path))

    def transfer(self, src: Path, folder: Path, op: str) -> Path:
        """Move (``op="move"``) or copy ``src`` into ``folder`` under a free name; return where it went."""
        try:
            st = os.lstat(src)
        except OSError as exc:
            raise FileOpError(f"cannot read file: {exc.strerror or exc}") from None
        self._ensure_folder(folder)
        for name in candidate_names(src.name):
            dst = folder / name
            if os.path.lexists(dst):
                continue
            self._seq += 1
            seq = self._seq
            tmp = folder / f".catsort-{self.id}-{seq}.tmp"
            self.write(
                {"seq": seq, "op": op, "src": self.rel(src), "dst": self.rel(dst), "size": st.st_size,
                 "ino": st.st_ino, "dev": st.st_dev, "tmp": self.rel(tmp)},
                sync=True,
            )
            try:
                self._carry_out(src, dst, tmp, seq, op)
            except (OSError, FileOpError) as exc:
                self.write({"seq": seq, "abandoned": True}, sync=False)
                if isinstance(exc, FileExistsError):
                    continue  # the name was taken meanwhile: try the next one
                if isinstance(exc, FileOpError):
                    raise
                raise FileOpError(f"cannot {op} to {folder.name}/: {exc.strerror or exc}") from None
            self.write({"seq": seq, "done": True}, sync=False)
            return dst
        raise AssertionError("candidate_names is endless")

    def _carry_out(self, src: Path, dst: Path, tmp: Path, seq: int, op: str) -> None:
        if op == "move":
            try:
                _place(src, dst)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        sha = _copy_verified(src, dst, tmp)
        self.write({"seq": seq, "verified": sha}, sync=True)
        _place(tmp, dst)
        if op == "move":
            os.unlink(src)

    def _ensure_folder(self, folder: Path) -> None:
        if folder.is_dir():
            return
        self.write({"seq": 0, "op": "mkdir", "src": "", "dst": self.rel(folder)}, sync=True)
        folder.mkdir(exist_ok=True)


# --- recovery and undo -------------------------------------------------------------------------


def _is_ours(intent: Intent, dst: Path, st: os.stat_result) -> bool:
    """Is the file now at ``dst`` the one this intent put there (same inode, or same verified bytes)?"""
    if (st.st_ino, st.st_dev) == (intent.ino, intent.dev):
        return True
    return intent.sha256 is not None and st.st_size == intent.size and file_sha256(dst) == intent.sha256


def _same_file(a: Path, b: Path) -> bool:
    sa, sb = os.lstat(a), os.lstat(b)
    return (sa.st_ino, sa.st_dev) == (sb.st_ino, sb.st_dev) or (sa.st_size == sb.st_size and file_sha256(a) == file_sha256(b))


def _remove_tmp(root: Path, intent: Intent) -> None:
    if intent.tmp:
        tmp = root / intent.tmp
        if _lstat(tmp) is not None:
            tmp.unlink()


def settle(root: Path, state: JournalState) -> None:
    """Finish the half-done operation a crash left behind, so each file is at exactly one place."""
    for intent in state.intents:
        if intent.op == "mkdir":
            continue
        _remove_tmp(root, intent)
        src, dst = root / intent.src, root / intent.dst
        st = _lstat(dst)
        if intent.op == "move" and st is not None and _lstat(src) is not None and _is_ours(intent, dst, st):
            if _same_file(src, dst):
                src.unlink()
    with state.path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"settled": _now()}) + "\n" + json.dumps({"end": _now()}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    state.ended = True


@dataclass
class UndoResult:
    restored: int = 0
    removed_copies: int = 0
    problems: list[str] = field(default_factory=list)


def _restore(src: Path, dst: Path) -> Path:
    """Bring ``dst`` back to ``src`` (or beside it, ``name (1).jpg``, if the name was taken since)."""
    for name in candidate_names(src.name):
        target = src.with_name(name)
        if os.path.lexists(target):
            continue
        try:
            _place(dst, target)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            tmp = target.with_name(f".catsort-undo-{os.getpid()}.tmp")
            _copy_verified(dst, target, tmp)
            _place(tmp, target)
            os.unlink(dst)
        return target
    raise AssertionError("candidate_names is endless")


def undo(root: Path, state: JournalState) -> UndoResult:
    """Put every file of one run back where it was, newest operation first."""
    result = UndoResult()
    for intent in reversed(state.intents):
        src, dst = root / intent.src, root / intent.dst
        if intent.op == "mkdir":
            try:
                dst.rmdir()
            except OSError:
                pass  # not empty (the user's files, or a problem reported below): keep it
            continue
        _remove_tmp(root, intent)
        st = _lstat(dst)
        src_there = _lstat(src) is not None
        try:
            if st is None or not _is_ours(intent, dst, st):
                if st is not None and not src_there:
                    result.problems.append(f"{intent.dst}: replaced by another file since the run; left alone")
                elif st is None and not src_there and not intent.abandoned:
                    if intent.done:
                        result.problems.append(f"{intent.src}: missing (not at {intent.dst} any more)")
                continue
            if intent.op == "copy" and src_there and _same_file(src, dst):
                dst.unlink()
                result.removed_copies += 1
            elif src_there and _same_file(src, dst):
                dst.unlink()  # an undo interrupted between link and unlink
                result.restored += 1
            else:
                target = _restore(src, dst)
                result.restored += 1
                if target != src:
                    result.problems.append(f"{intent.src}: that name is taken now; restored as {target.name}")
        except OSError as exc:
            result.problems.append(f"{intent.dst}: cannot restore: {exc.strerror or exc}")
    if not result.problems:
        with state.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"undone": _now()}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        state.undone = True
    return result


def journals(root: Path) -> list[JournalState]:
    folder = root / JOURNAL_FOLDER / "runs"
    if not folder.is_dir():
        return []
    return [JournalState.read(p) for p in sorted(folder.glob("*.jsonl"))]


def settle_interrupted(root: Path) -> int:
    """Settle every journal a killed run left open; returns how many there were."""
    open_ones = [j for j in journals(root) if not j.ended]
    for state in open_ones:
        settle(root, state)
    return len(open_ones)


@contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """One catsort at a time per folder; the OS drops the lock if the process dies."""
    folder = root / JOURNAL_FOLDER
    folder.mkdir(exist_ok=True)
    with (folder / "lock").open("a") as f:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks from the standard library
            yield
            return
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise FolderBusyError(f"{root}: another catsort is working on this folder") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
