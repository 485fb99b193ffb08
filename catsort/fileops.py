"""Moves and copies that never overwrite and never lose a photo, journaled before they happen.

Each run writes ``.catsort/runs/<time>-<pid>.jsonl`` in the sorted folder. Before a file is
touched, a line naming the operation (and the file's inode and size) is written and fsynced.
A same-filesystem move is ``link(src, dst)`` then ``unlink(src)``: ``link`` refuses an existing
name, so nothing is ever overwritten, and a crash between the two leaves two names for one inode,
which the next run settles. A copy (or a move across filesystems) goes to a hidden temporary
file, is fsynced and verified by sha256, and only then linked under its final name.

Whatever the journal says, recovery and undo look at the filesystem to decide what happened,
so running them twice, or after a crash in the middle of either, is harmless.

A journal is also untrusted input: a shared drive or an unzipped photo pack can hold one that
someone else wrote. Every line is signed (:mod:`catsort.signing`) and every path it names is
checked (:func:`_path_problem`) before recovery or undo acts on any of it; a journal that fails is
reported in one line and left alone, never acted on, never deleted.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from catsort import signing
from catsort.checksum import file_sha256
from catsort.errors import CatsortError, FileOpError, FolderBusyError, FolderError, FolderVanished
from catsort.layout import JOURNAL_FOLDER, OUTPUT_FOLDERS, candidate_names, folded, temporary_name, undo_temporary_name

__all__ = ["FileOpError", "FolderBusyError", "Journal", "JournalState", "RunStopped", "folder_lock", "read_journals", "write_problem",
           "settle_interrupted"]

_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS, errno.EACCES}
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
READ_ONLY = frozenset({errno.EROFS})
STOPPING = DISK_FULL | READ_ONLY
"""Faults of a whole filesystem: every later file would fail the same way, so the run stops at once."""
MIN_FREE_BYTES = 1 << 20
"""A run is refused before it touches anything when the folder's disk has less room than this (its journal needs some)."""
MAX_JOURNAL_BYTES = 256 << 20
"""A run over 100,000 photos writes about 60 MB; anything much larger is not one of ours."""
TRUST_HINT = "if this journal is yours (from another computer of yours or a restored backup), act on it with --trust-journals"


class RunStopped(CatsortError):
    """A fault of the whole filesystem (full, read-only, the journal cannot be written): the run stopped cleanly.

    ``str()`` is one line naming the place and the cause; every file is at its old or its new place and
    what was done is journaled, so ``--undo`` reverts it (once there is room, if the disk is full).
    """


def os_reason(exc: OSError) -> str:
    """``No space left on device``: the one-line cause of an OSError, without the path Python adds."""
    if exc.errno in DISK_FULL:
        return f"the disk is full ({exc.strerror or exc})"
    if exc.errno in READ_ONLY:
        return f"it is read-only ({exc.strerror or exc})"
    return str(exc.strerror or exc)


def free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


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
    except (FileNotFoundError, NotADirectoryError):  # absent, or a file where a folder on its way should be
        return None


class _NoHardLinks(Exception):
    """``link`` failed the way a filesystem without hard links fails it (``errno`` says how)."""

    def __init__(self, errno_: int) -> None:
        super().__init__(errno_)
        self.errno = errno_


def _place(src: Path, dst: Path) -> None:
    """Make the file at ``src`` appear at ``dst`` and disappear from ``src`` on one filesystem.

    Raises FileExistsError if ``dst`` is taken, and OSError(EXDEV) across filesystems. Where the
    filesystem has no hard links it falls back to :func:`_rename_unless_taken`.
    """
    try:
        _link_then_unlink(src, dst)
    except _NoHardLinks:
        _rename_unless_taken(src, dst)


def _link_then_unlink(src: Path, dst: Path) -> None:
    """:func:`_place` by hard link only: ``link`` refuses a taken ``dst`` (FileExistsError), so nothing is
    overwritten. Raises :class:`_NoHardLinks` where the filesystem has none, for a move that must journal
    more before it renames instead."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in _NO_HARDLINKS:
            raise _NoHardLinks(exc.errno) from None
        raise
    try:
        os.unlink(src)
    except OSError:
        os.unlink(dst)  # the original could not be removed (read-only folder): no second name left behind
        raise


def _rename_unless_taken(src: Path, dst: Path) -> None:
    """:func:`_place` on filesystems without hard links (FAT, exFAT, some network shares); FileExistsError if
    ``dst`` is taken. Atomic where the kernel can refuse a taken name itself (:func:`_rename_noreplace`);
    elsewhere (FUSE mounts such as exfat-fuse, other systems) check, then rename, which a file created
    under that very name in between would lose to."""
    if _rename_noreplace(src, dst):
        return
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "destination exists", str(dst))
    os.rename(src, dst)


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_NO_RENAME_FLAGS = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP})
"""How a filesystem (FUSE before protocol 7.23) or kernel (before 3.15) says it has no ``RENAME_NOREPLACE``."""


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """Linux's ``renameat2`` from the C library (glibc 2.28 on), or None; the standard library has no binding."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def _rename_noreplace(src: Path, dst: Path) -> bool:
    """Rename ``src`` to ``dst`` in one step that refuses a taken ``dst`` (FileExistsError), as ``link`` does.

    False, having done nothing, where the system or the filesystem cannot. Linux's own ext4, btrfs, xfs,
    tmpfs, exfat and vfat can, so a move there never depends on a check made an instant before.
    """
    call = _renameat2()
    if call is None:
        return False
    if call(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_RENAME_FLAGS:
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def _copy_verified(src: Path, dst: Path, tmp: Path) -> str:
    """Copy ``src`` to ``dst`` via ``tmp``; fsync, compare sha256 and size, then link into place."""
    digest = hashlib.sha256()
    try:
        with src.open("rb") as fin, tmp.open("xb") as fout:
            for chunk in iter(lambda: fin.read(1 << 20), b""):
                digest.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, tmp)
        expected = digest.hexdigest()
        if tmp.stat().st_size != src.stat().st_size or file_sha256(tmp) != expected:
            raise FileOpError("copy verification failed: the copy differs from the original")
    except BaseException:
        _discard(tmp)  # a disk that filled up mid-copy leaves no hidden partial file behind
        raise
    return expected


def _discard(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # gone already, or the next settle removes it (temporary names are journaled)


# --- where catsort may write -------------------------------------------------------------------


def check_folder(root: Path) -> Path:
    """The folder, resolved, or a :class:`FolderError` that says why it cannot be sorted."""
    if not root.exists():
        raise FolderError(f"{root}: no such folder")
    if not root.is_dir():
        raise FolderError(f"{root}: not a folder")
    return root.resolve()


FolderIdentity = tuple[int, int]
"""A folder's (device, inode): the same path naming another folder (or none) means it was moved or removed."""


def folder_identity(root: Path) -> FolderIdentity:
    st = os.stat(root)
    return st.st_dev, st.st_ino


def check_still_there(root: Path, identity: FolderIdentity) -> None:
    """Raise :class:`FolderVanished` if ``root`` is no longer the folder that had ``identity``.

    Asked when a file of the run fails: had the whole folder gone (deleted, renamed, its USB stick
    pulled out), every later file would fail the same way, one line each, for thousands of lines.
    """
    try:
        now = folder_identity(root)
    except OSError:
        now = None
    if now != identity:
        raise FolderVanished(f"{_gone_line(root)} since the run began")


def _gone_line(root: Path) -> str:
    """The one wording of a folder that is no longer there, wherever that is found."""
    return f"{root}: the folder is gone (deleted, moved, or its disk removed)"


def write_problem(root: Path) -> str | None:
    """Why a run could change nothing in ``root`` (a read-only disk, no permission), or None: said before a
    dry run's or the window's review, not after it. ``access`` answers as the process is, root included."""
    if os.access(root, os.W_OK | os.X_OK):
        return None
    try:
        read_only = bool(os.statvfs(root).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs on Windows
        read_only = False
    return f"{root}: this folder cannot be written ({'the disk is read-only' if read_only else 'permission denied'})"


def check_writable_places(root: Path) -> None:
    """Refuse, before any file moves, a ``cats/``, ``dogs/`` or ``.catsort/`` that is a link or a file.

    Writing through a symbolic link would move photos out of the folder (or journal them
    elsewhere); the user decides what the link is for, catsort only says what it found.
    """
    for name in (*OUTPUT_FOLDERS.values(), JOURNAL_FOLDER):
        place = root / name
        st = _lstat(place)
        if st is None or stat.S_ISDIR(st.st_mode):
            continue
        if stat.S_ISLNK(st.st_mode):
            raise FolderError(
                f"{place} is a symbolic link to {os.readlink(place)}; catsort never writes through a link: "
                f"replace it with a real folder (or move the link away) and run again"
            )
        raise FolderError(f"{place} is a file, not a folder; rename it so catsort can create {name}/ there")


def _through_link(root: Path, rel: str) -> bool:
    """Does any folder on the way from ``root`` to ``rel`` exist as a symbolic link?"""
    here = root
    for part in PurePosixPath(rel).parts[:-1]:
        here = here / part
        st = _lstat(here)
        if st is None:
            return False
        if stat.S_ISLNK(st.st_mode):
            return True
    return False


def _path_problem(rel: object) -> str | None:
    """Why ``rel`` cannot be a path catsort wrote relative to the folder, or None if it can."""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        return "it is not a path"
    if os.sep != "/" and ("\\" in rel or ":" in rel):
        return "it is not a path catsort writes"
    path = PurePosixPath(rel)
    if path.is_absolute() or rel.startswith("/"):
        return "it is an absolute path"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return "it leaves the folder"
    return None


def _intent_problem(root: Path, intent: Intent, journal_id: str) -> str | None:
    """Why this journal entry is not one this catsort could have written, or None."""
    if intent.op == "mkdir":
        if intent.dst not in OUTPUT_FOLDERS.values():
            return f"it creates a folder other than cats/ or dogs/ ({intent.dst})"
        return None
    if intent.op not in ("move", "copy"):
        return f"unknown operation {intent.op!r}"
    for value in (intent.src, intent.dst, intent.tmp):
        problem = _path_problem(value)
        if problem:
            return f"it names a file outside the folder ({value!r}: {problem})"
    src, dst = PurePosixPath(intent.src), PurePosixPath(intent.dst)
    if folded(src.parts[0]) in {*OUTPUT_FOLDERS.values(), JOURNAL_FOLDER} or any(p.startswith(".") for p in src.parts):
        return f"its source {intent.src} is not a photo catsort sorts"
    if len(dst.parts) != 2 or dst.parts[0] not in OUTPUT_FOLDERS.values() or dst.name.startswith("."):
        return f"its destination {intent.dst} is not inside cats/ or dogs/"
    if intent.tmp != f"{dst.parts[0]}/{temporary_name(journal_id, intent.seq)}":
        return f"its temporary file {intent.tmp} is not one catsort writes"
    for value in (intent.src, intent.dst):
        if _through_link(root, value):
            return f"the path {value} goes through a symbolic link"
    return None


# --- the journal -------------------------------------------------------------------------------


class UntrustedJournal(FolderError):
    """A journal that is not acted on; ``str()`` is the one-line report."""


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
    mtime: int = 0
    """The photo's modification time (ns) when it was moved; 0 in journals from before it was written."""
    abandoned: bool = False
    done: bool = False


_INTENT_TYPES = {"seq": int, "op": str, "src": str, "dst": str, "size": int, "ino": int, "dev": int, "tmp": str, "mtime": int}


@dataclass
class JournalState:
    """A journal read back, checked and signed; :meth:`append` continues its signature chain."""

    path: Path
    intents: list[Intent] = field(default_factory=list)
    ended: bool = False
    undone: bool = False
    last_mac: str = ""
    complete_bytes: int = 0
    """Length of the file up to its last whole line; a torn tail is cut off before appending."""

    @classmethod
    def read(cls, root: Path, path: Path, trust: bool = False) -> JournalState:
        """Read and check one journal; raise :class:`UntrustedJournal` if any of it cannot be trusted.

        ``trust`` accepts a journal this user's key did not sign (the user says it is theirs);
        the paths it names are checked all the same, and it is signed anew.
        """
        def untrusted(reason: str) -> UntrustedJournal:
            return UntrustedJournal(f"ignoring {path}: {reason}")

        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise untrusted("it is not a regular file")
        if st.st_size > MAX_JOURNAL_BYTES:
            raise untrusted(f"at {st.st_size >> 20} MB it is too large to be a catsort journal")
        if st.st_nlink > 1:  # catsort never links its journals: this one is also a file elsewhere
            raise untrusted("it has other names (hard links), so it is not a journal catsort wrote")
        data = path.read_bytes()
        state = cls(path, complete_bytes=data.rfind(b"\n") + 1)
        if state.complete_bytes == 0:
            if data:  # not even its header line is whole: nothing was ever done under it
                raise untrusted("it has no complete line: not a catsort journal (or cut short before any move)")
            state.ended = True  # an empty file announced nothing: nothing to settle, nothing to write
        key = signing.journal_key()
        previous, header, by_seq = path.name, None, {}
        foreign = False  # some line is not signed by this user's key (acted on only when ``trust``)
        for number, raw in enumerate(data[: state.complete_bytes].splitlines(), 1):
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):
                raise untrusted(f"line {number} is not JSON: not a catsort journal, or altered") from None
            if not isinstance(rec, dict):
                raise untrusted(f"line {number} is not a record: not a catsort journal")
            mac = rec.pop("mac", None)
            if header is None:
                if "catsort_journal" not in rec:
                    raise untrusted("it does not start like a catsort journal")
                header = rec
            if not foreign and not signing.verify(key, previous, rec, mac):
                foreign = True
            if foreign and not trust:
                if number > 1:
                    raise untrusted(f"line {number} was changed after catsort wrote it")
                if mac is None:
                    reason = "it is not signed (written by hand, or by a catsort older than 0.2)"
                elif header.get("key") != signing.key_id(key):
                    reason = "it was signed by another user's or another computer's catsort"
                else:
                    reason = "its first line was changed after catsort wrote it"
                raise untrusted(f"{reason}; {TRUST_HINT}")
            previous = mac if isinstance(mac, str) else previous
            problem = state._add(rec, by_seq)
            if problem:
                raise untrusted(f"line {number}: {problem}")
        for intent in state.intents:
            problem = _intent_problem(root, intent, path.stem)
            if problem:
                raise untrusted(problem)
        state.last_mac = previous
        if foreign and state.intents:  # vouched for: signed anew once, not rewritten at every later run
            state._sign_anew(data[: state.complete_bytes])
        return state

    def _add(self, rec: dict, by_seq: dict[int, Intent]) -> str | None:
        if "op" in rec:
            fields = {k: rec[k] for k in _INTENT_TYPES if k in rec}
            if any(not isinstance(v, _INTENT_TYPES[k]) or isinstance(v, bool) for k, v in fields.items() if v is not None):
                return "an entry with fields of the wrong type"
            try:
                intent = Intent(**fields)
            except TypeError:
                return "an entry without its source or destination"
            by_seq[intent.seq] = intent
            self.intents.append(intent)
        elif "seq" in rec and rec["seq"] in by_seq:
            intent = by_seq[rec["seq"]]
            verified = rec.get("verified")
            intent.sha256 = verified if isinstance(verified, str) else intent.sha256
            intent.abandoned |= bool(rec.get("abandoned"))
            intent.done |= bool(rec.get("done"))
        self.ended |= "end" in rec
        self.undone |= "undone" in rec
        return None

    def _sign_anew(self, data: bytes) -> None:
        """Rewrite a journal the user vouched for under this user's key (atomically), so they need not vouch again."""
        key = signing.journal_key()
        previous, lines = self.path.name, []
        for raw in data.splitlines():
            rec = json.loads(raw)
            rec.pop("mac", None)
            if "catsort_journal" in rec:
                rec["key"] = signing.key_id(key)
            previous = signing.sign(key, previous, rec)
            lines.append(json.dumps({**rec, "mac": previous}) + "\n")
        tmp: Path | None = None
        try:
            # A fresh, exclusive name: a link planted under a predictable name is never written through.
            fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=".resign-", suffix=".tmp")
            tmp = Path(name)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.writelines(lines)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            if tmp is not None:
                _discard(tmp)
            raise RunStopped(f"{self.path}: cannot sign the journal anew: {os_reason(exc)}; nothing was changed") from None
        self.last_mac, self.complete_bytes = previous, self.path.stat().st_size

    def append(self, record: dict) -> None:
        """Add a signed line (settled, end, undone), first cutting off a line a power cut tore.

        A disk that is full (or read-only) raises :class:`RunStopped`, with the journal cut back to its
        last whole line: it is then exactly as before the call, and the next run settles it again.
        """
        mac = signing.sign(signing.journal_key(), self.last_mac, record)
        line = (json.dumps({**record, "mac": mac}) + "\n").encode("ascii")
        try:
            if self.path.stat().st_size != self.complete_bytes:
                os.truncate(self.path, self.complete_bytes)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0))
            try:
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            try:
                os.truncate(self.path, self.complete_bytes)
            except OSError:
                pass  # a torn last line is cut off by the next reader all the same
            raise RunStopped(f"{self.path.parent}: cannot write to the undo journal: {os_reason(exc)}") from None
        self.last_mac, self.complete_bytes = mac, self.complete_bytes + len(line)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _LineFile:
    """The journal file, unbuffered: a failed write (disk full) keeps no bytes in a buffer that a later
    flush or close would write after a torn line; the caller cuts the file back to its last whole line."""

    def __init__(self, path: Path) -> None:
        self.fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)

    def write(self, text: str) -> None:
        assert self.fd is not None, "journal already closed"
        _write_all(self.fd, text.encode("ascii"))

    def fileno(self) -> int:
        assert self.fd is not None
        return self.fd

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


class Journal:
    """Append-only, signed JSON-lines log of one run's operations."""

    def __init__(self, root: Path, path: Path) -> None:
        self.root = root
        self.path = path
        self.id = path.stem
        self._key = signing.journal_key()
        self._mac = path.name
        self._file = _LineFile(path)
        self._seq = 0
        self._touched = False
        """A move or copy was journaled: from then on the journal is the run's, kept to settle and undo."""
        self._made: list[Path] = []
        """Output folders this run created: removed again, if still empty, when it ends having moved nothing."""
        self._length = 0
        """Bytes of whole lines written: after a failed write the file is cut back to this."""
        self.broken: RunStopped | None = None
        """Set once a write failed: nothing more is written (or done) under this journal."""
        self._no_links: set[int] = set()
        """Devices where ``link`` failed for want of hard links: moves there go straight to rename."""

    @classmethod
    def start(cls, root: Path, mode: str) -> Journal:
        """A new journal for one run, or a one-line refusal (nothing touched) if the folder cannot hold it."""
        check_writable_places(root)
        folder = root / JOURNAL_FOLDER / "runs"
        if _through_link(root, f"{JOURNAL_FOLDER}/runs/x"):
            raise FolderError(f"{folder} is a symbolic link; catsort never writes its journal through a link: remove it")
        free = free_bytes(root)
        if free is not None and free < MIN_FREE_BYTES:
            raise RunStopped(f"{root}: the disk is full ({free // 1024} KB free); nothing was changed: make room and run again")
        path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 1_000_000_000:09d}-{os.getpid()}.jsonl"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            journal = cls(root, path)
        except OSError as exc:
            raise RunStopped(f"{folder}: cannot write the undo journal there: {os_reason(exc)}; nothing was changed") from None
        try:
            journal.write({"catsort_journal": 2, "started": _now(), "mode": mode, "key": signing.key_id(journal._key)}, sync=True)
            _fsync_folder(folder)
        except (OSError, RunStopped) as exc:
            journal._file.close()
            _discard(path)
            reason = str(exc) if isinstance(exc, RunStopped) else f"{folder}: cannot write the undo journal there: {os_reason(exc)}"
            raise RunStopped(f"{reason}; nothing was changed") from None
        return journal

    def write(self, record: dict, sync: bool) -> None:
        """Append one signed line; a failure (disk full) cuts the file back to its last whole line and raises
        :class:`RunStopped`, and every later write raises it again: the run must stop."""
        if self.broken is not None:
            raise self.broken
        mac = signing.sign(self._key, self._mac, record)
        # ASCII JSON: file names that are not valid UTF-8 survive as escapes instead of failing the write.
        line = json.dumps({**record, "mac": mac}) + "\n"
        try:
            self._file.write(line)
            if sync:
                os.fsync(self._file.fileno())
        except OSError as exc:
            try:
                os.ftruncate(self._file.fileno(), self._length)
            except OSError:
                pass  # a torn last line is cut off by every reader
            self.broken = RunStopped(f"{self.path.parent}: cannot write to the undo journal: {os_reason(exc)}")
            raise self.broken from None
        self._touched |= record.get("op") in ("move", "copy")
        self._mac = mac
        self._length += len(line)

    def _note(self, record: dict) -> None:
        """A line that only reports (done, abandoned): settle and undo look at the disk, so losing it is harmless.
        A failure still marks the journal broken, so the next file is not moved."""
        try:
            self.write(record, sync=False)
        except RunStopped:
            pass

    def rel(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def close(self) -> None:
        """Mark the run complete; a run that touched nothing leaves no journal (nothing to undo).

        Raises :class:`RunStopped` if the end cannot be written (disk full): the journal then stays open,
        and the next run (or ``--undo``) settles it, which is harmless.
        """
        if not self._touched:
            self._file.close()
            self._leave_no_trace()
            return
        try:
            if self.broken is None:
                self.write({"end": _now()}, sync=True)
            else:
                self.abort()
        finally:
            self._file.close()
        if self.broken is not None:
            raise self.broken

    def abort(self) -> bool:
        """After an interruption: settle whatever operation was cut short, then mark the run ended.

        Never raises for a full or read-only disk (it is called while another error is on its way):
        returns False if the journal could not be marked ended, and the next run settles it.
        """
        try:
            self._file.close()
        except OSError:
            pass  # the disk went away (a FUSE daemon killed): the error on its way says more than this one
        if not self._touched:
            self._leave_no_trace()
            return True
        try:
            settle(self.root, JournalState.read(self.root, self.path))
        except (OSError, RunStopped):
            return False
        return True

    def _leave_no_trace(self) -> None:
        """End a run that moved and copied nothing: no journal, and no empty cats/ or dogs/ it made on the way
        (a run stopped between creating dogs/ and its first move), so that it changed nothing and --undo
        still means the run before."""
        for folder in reversed(self._made):
            try:
                folder.rmdir()
            except OSError:
                pass  # something was put in it meanwhile: it stays
        _discard(self.path)

    def transfer(self, src: Path, folder: Path, op: str, first_name: str | None = None) -> Path:
        """Move (``op="move"``) or copy ``src`` into ``folder`` under a free name; return where it went.

        ``first_name`` is the name the plan showed the user; the next free one is used if it was taken since.
        """
        if self.broken is not None:
            raise self.broken
        try:
            st = os.lstat(src)
        except OSError as exc:
            raise FileOpError(f"cannot read file: {exc.strerror or exc}") from None
        self._ensure_folder(folder)
        names = candidate_names(src.name)
        if first_name is not None:
            names = _starting_at(first_name, names)
        for name in names:
            dst = folder / name
            if os.path.lexists(dst):
                continue
            self._seq += 1
            seq = self._seq
            tmp = folder / temporary_name(self.id, seq)
            self.write(
                {"seq": seq, "op": op, "src": self.rel(src), "dst": self.rel(dst), "size": st.st_size,
                 "ino": st.st_ino, "dev": st.st_dev, "mtime": st.st_mtime_ns, "tmp": self.rel(tmp)},
                sync=True,
            )
            try:
                self._carry_out(src, dst, tmp, seq, op, st)
            except (OSError, CatsortError) as exc:
                _discard(tmp)
                if isinstance(exc, RunStopped):
                    raise
                self._note({"seq": seq, "abandoned": True})
                if isinstance(exc, FileExistsError):
                    continue  # the name was taken meanwhile: try the next one
                if isinstance(exc, CatsortError):
                    raise
                if exc.errno in STOPPING:
                    raise RunStopped(f"{folder}: cannot {op} {src.name} there: {os_reason(exc)}") from None
                raise FileOpError(f"cannot {op} to {folder.name}/: {exc.strerror or exc}") from None
            self._note({"seq": seq, "done": True})
            return dst
        raise AssertionError("candidate_names is endless")

    def _carry_out(self, src: Path, dst: Path, tmp: Path, seq: int, op: str, st: os.stat_result) -> None:
        if op == "move":
            try:
                if st.st_dev in self._no_links:
                    self._rename_journaled(src, dst, seq)
                    return
                try:
                    _link_then_unlink(src, dst)
                except _NoHardLinks as exc:
                    if exc.errno != errno.EACCES:  # EACCES may be this folder's permissions, not the filesystem
                        self._no_links.add(st.st_dev)
                    self._rename_journaled(src, dst, seq)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        sha = _copy_verified(src, dst, tmp)
        self.write({"seq": seq, "verified": sha}, sync=True)
        _place(tmp, dst)
        if op == "move":
            try:
                os.unlink(src)
            except OSError:
                os.unlink(dst)  # the original cannot be removed (read-only source): the verified copy goes again
                raise

    def _rename_journaled(self, src: Path, dst: Path, seq: int) -> None:
        """A move where there are no hard links. A rename keeps no identity a later undo can trust
        (exFAT renumbers inodes when the stick is plugged in again): journal the sha256 first, as for a copy."""
        self.write({"seq": seq, "verified": file_sha256(src)}, sync=True)
        _rename_unless_taken(src, dst)

    def _ensure_folder(self, folder: Path) -> None:
        st = _lstat(folder)
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):  # became a link or a file since the run started
                raise FileOpError(f"{folder.name}/ is not a real folder any more; nothing written through it")
            return
        self.write({"seq": 0, "op": "mkdir", "src": "", "dst": self.rel(folder)}, sync=True)
        try:
            folder.mkdir()
        except FileExistsError:
            return  # made meanwhile by someone else: theirs, not this run's to remove
        except OSError as exc:
            if exc.errno in STOPPING:
                raise RunStopped(f"{folder}: cannot create the folder: {os_reason(exc)}") from None
            raise FileOpError(f"cannot create {folder.name}/: {exc.strerror or exc}") from None
        self._made.append(folder)


def _starting_at(first: str, names: Iterator[str]) -> Iterator[str]:
    """The candidate names from ``first`` on (the plan may already have skipped taken ones)."""
    for name in names:
        if name == first:
            yield name
            yield from names
            return


# --- recovery and undo -------------------------------------------------------------------------


COPIED_MTIME_NS = 2_000_000_000
"""How far a copy's modification time may be from the original's: a FAT disk keeps it to 2 s, exFAT to 10 ms."""


def _is_ours(intent: Intent, dst: Path, st: os.stat_result) -> bool:
    """Is the file now at ``dst`` the one this intent put there? The same inode; or the same verified bytes; or,
    in a copy of the sorted folder (a backup restored, the folder taken to another disk or computer: new inodes),
    the same size and modification time, as rsync and backup tools tell a file unchanged. A photo edited or
    replaced since has another time."""
    if not stat.S_ISREG(st.st_mode) or st.st_size != intent.size:
        return False
    if (st.st_ino, st.st_dev) == (intent.ino, intent.dev):
        return True  # the size too (above): a deleted photo's inode number is soon given to another file
    if intent.sha256 is not None:
        return file_sha256(dst) == intent.sha256
    # Only for an operation the journal says was carried out: one given up on (its name was taken by another file)
    # or cut short by a crash may have another file at ``dst``, of the same size and time (a sync tool's copy).
    return intent.done and not intent.abandoned and intent.mtime != 0 and abs(st.st_mtime_ns - intent.mtime) < COPIED_MTIME_NS


def _same_file(a: Path, b: Path) -> bool:
    """Two names of one photo, so that removing ``b`` loses nothing.

    One inode counts only with at least two links: on a case-insensitive disk ``cats/x.jpg`` and
    ``CATS/x.jpg`` are one name of one file, and removing "the other" would delete the photo.
    """
    sa, sb = os.lstat(a), os.lstat(b)
    if not (stat.S_ISREG(sa.st_mode) and stat.S_ISREG(sb.st_mode)):
        return False
    if (sa.st_ino, sa.st_dev) == (sb.st_ino, sb.st_dev):
        return sa.st_nlink >= 2
    return sa.st_size == sb.st_size and file_sha256(a) == file_sha256(b)


def _remove_tmp(root: Path, intent: Intent) -> None:
    if intent.tmp:
        tmp = root / intent.tmp
        if _lstat(tmp) is not None:
            tmp.unlink()


class SettledUnmarked(RunStopped):
    """Every file of the interrupted run is at one place, but the full disk took no line saying so."""


def settle(root: Path, state: JournalState) -> None:
    """Finish the half-done operation a crash left behind, so each file is at exactly one place.

    Only removes names (temporary files, the second name of a finished move), so it needs no room on
    the disk; if even the journal's end mark cannot be written, :class:`RunStopped` says so and the
    journal stays open, to be settled again (harmlessly) by the next run.
    """
    try:
        for intent in state.intents:
            if intent.op == "mkdir":
                continue
            _remove_tmp(root, intent)
            src, dst = root / intent.src, root / intent.dst
            st = _lstat(dst)
            moved = intent.op == "move" and st is not None and _lstat(src) is not None and _is_ours(intent, dst, st)
            if moved and _same_file(src, dst):
                src.unlink()
    except OSError as exc:
        raise RunStopped(f"{root}: cannot settle the interrupted run {state.path.name}: {os_reason(exc)}") from None
    try:
        state.append({"settled": _now()})
        state.append({"end": _now()})
    except RunStopped as exc:
        raise SettledUnmarked(f"{exc}; the interrupted run {state.path.name} is settled on disk but not marked so: "
                              "make room and run catsort again (harmless)") from None
    state.ended = True


@dataclass
class UndoResult:
    restored: int = 0
    removed_copies: int = 0
    problems: list[str] = field(default_factory=list)
    stopped: str | None = None
    """Why the undo stopped part way (disk full, read-only): run it again once that is fixed."""


def _restore(src: Path, dst: Path, tmp_name: str) -> Path:
    """Bring ``dst`` back to ``src`` (or beside it, ``name (1).jpg``, if the name was taken since); across disks by a
    verified copy under ``tmp_name`` (:func:`~catsort.layout.undo_temporary_name`) beside ``src``."""
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
            tmp = target.with_name(tmp_name)
            _discard(tmp)  # what an undo of this run killed mid-copy left
            _copy_verified(dst, target, tmp)
            _place(tmp, target)
            try:
                os.unlink(dst)
            except OSError:
                os.unlink(target)  # cats/ is read-only: the photo stays there, once
                raise
        return target
    raise AssertionError("candidate_names is endless")


def _make_parent_again(root: Path, rel: str) -> None:
    """The sub-folder a recursive run emptied, made again if the user has since deleted it.

    Deleting the emptied folders is a natural tidy-up after ``-r``; without them the photos could
    never go home, and every later ``--undo`` would stop at this run. Never through a symbolic link.
    """
    here = root
    for part in PurePosixPath(rel).parts[:-1]:  # a level at a time, each looked at before the next is made
        here = here / part
        st = _lstat(here)
        if st is None:
            here.mkdir()
        elif stat.S_ISLNK(st.st_mode):
            raise OSError(errno.ELOOP, "a folder on the way is a symbolic link", str(here))


def undo(root: Path, state: JournalState, result: UndoResult | None = None) -> UndoResult:
    """Put every file of one run back where it was, newest operation first.

    Counted into ``result`` as it goes, when the caller passes one: what an undo did before Ctrl-C is then still known.
    """
    result = UndoResult() if result is None else result
    to_retry = False
    """A file that could not be restored now but may be later; replaced or missing files never come back."""
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
                elif st is None and not src_there and not intent.abandoned and intent.done:
                    result.problems.append(f"{intent.src}: missing (not at {intent.dst} any more)")
                continue
            if intent.op == "copy" and src_there and _same_file(src, dst):
                dst.unlink()
                result.removed_copies += 1
            elif src_there and _same_file(src, dst):
                dst.unlink()  # an undo interrupted between link and unlink
                result.restored += 1
            else:
                _make_parent_again(root, intent.src)
                target = _restore(src, dst, undo_temporary_name(state.path.stem, intent.seq))
                result.restored += 1
                if target != src:
                    result.problems.append(f"{intent.src}: that name is taken now; restored as {target.name}")
        except OSError as exc:
            if exc.errno in STOPPING:
                place = (root / intent.src).parent if exc.errno in DISK_FULL else root / intent.dst
                result.stopped = f"{place}: cannot restore {intent.dst}: {os_reason(exc)}"
                return result
            result.problems.append(f"{intent.dst}: cannot restore: {exc.strerror or exc}")
            to_retry = True
    if not to_retry:  # done as far as it can ever be: the next undo goes on to the run before
        try:
            state.append({"undone": _now()})
        except RunStopped as exc:
            result.stopped = f"{exc} (every file of the run is back; the next --undo finds it done)"
            return result
        state.undone = True
    return result


def journal_paths(root: Path) -> list[Path]:
    """The folder's journal files, oldest first (their names start with the time of the run)."""
    folder = root / JOURNAL_FOLDER / "runs"
    if _through_link(root, f"{JOURNAL_FOLDER}/runs/x") or not folder.is_dir():
        return []
    return sorted(folder.glob("*.jsonl"))


def read_journals(root: Path, trust: bool = False, paths: list[Path] | None = None) -> tuple[list[JournalState], list[str]]:
    """Every journal of the folder (or of ``paths``) that can be trusted, oldest first, and a line for each that cannot."""
    states, warnings = [], []
    for path in journal_paths(root) if paths is None else paths:
        try:
            states.append(JournalState.read(root, path, trust))
        except UntrustedJournal as exc:
            warnings.append(str(exc))
        except OSError as exc:
            warnings.append(f"ignoring {path}: cannot read it ({exc.strerror or exc})")
        except Exception as exc:  # whatever a crafted file provokes, it is one line, never a traceback
            warnings.append(f"ignoring {path}: not a catsort journal ({type(exc).__name__})")
    return states, warnings


def settle_open(root: Path, states: list[JournalState], unmarked_ok: bool = False) -> int:
    """Settle those of ``states`` a killed run left open (in place); how many there were.

    ``unmarked_ok``: go on when a run is settled on disk but its journal cannot say so (the disk is
    full). An undo can: putting photos back takes no room, and settling again later is harmless.
    """
    open_ones = [j for j in states if not j.ended]
    for state in open_ones:
        try:
            settle(root, state)
        except SettledUnmarked:
            if not unmarked_ok:
                raise
    return len(open_ones)


JournalsSeen = dict[Path, tuple[int, int, int]]
"""Each journal file's (size, mtime in ns, inode) when it was last read and settled."""


def journals_seen(root: Path) -> JournalsSeen:
    """What :func:`settle_interrupted` needs to know to skip the journals unchanged since this call."""
    seen: JournalsSeen = {}
    for path in journal_paths(root):
        try:
            st = os.lstat(path)
        except OSError:
            continue  # read again next time
        seen[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return seen


def settle_interrupted(root: Path, trust: bool = False, seen: JournalsSeen | None = None) -> tuple[int, list[str]]:
    """Settle every trusted journal a killed run left open: (how many there were, lines for the untrusted).

    ``seen`` (from :func:`journals_seen` after an earlier settle) leaves out the journals unchanged
    since: they were read, settled and warned about then, and reading and checking every run the
    folder ever had twice per run costs seconds in a folder with long history.
    """
    paths = None if seen is None else [p for p, sig in journals_seen(root).items() if seen.get(p) != sig]
    states, warnings = read_journals(root, trust, paths)
    return settle_open(root, states), warnings


_LOCK_ATTEMPTS = 5
"""Times a lock is taken again when the lock file it holds was removed meanwhile (see :func:`folder_lock`)."""


def _open_lock(root: Path) -> int:
    folder = root / JOURNAL_FOLDER
    try:
        folder.mkdir(exist_ok=True)
    except FileNotFoundError:  # found when the run began, gone before it could lock it
        raise FolderVanished(f"{_gone_line(root)}; nothing was changed") from None
    except OSError as exc:
        raise FolderError(f"{root}: cannot write in this folder: {os_reason(exc)}; catsort keeps its undo journal "
                          "there, so it changes nothing in a folder it cannot write") from None
    try:  # never through a link someone left in place of the lock file
        # O_NONBLOCK: a FIFO planted as the lock would otherwise block the open for ever.
        fd = os.open(folder / "lock", os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise FolderError(f"{folder / 'lock'}: cannot open the folder's lock: {os_reason(exc)}; nothing was changed") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FolderError(f"{folder / 'lock'} is not a regular file; remove it and run again")
    return fd


def _still_the_lock_file(root: Path, fd: int) -> bool:
    """Whether ``fd`` is still the file at ``.catsort/lock``: a run that ended tidies the lock away, and one
    that opened it just before then locks a file nobody else can see."""
    held, now = os.fstat(fd), _lstat(root / JOURNAL_FOLDER / "lock")
    return now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _tidy(root: Path) -> None:
    """Remove ``.catsort/`` if it holds only the lock and no journal: a run that changed nothing leaves no trace.
    Called with the lock held, so no other run is inside; one waiting re-checks its lock file."""
    folder = root / JOURNAL_FOLDER
    try:
        names = {e.name for e in os.scandir(folder)}
        if names - {"lock", "runs"} or ("runs" in names and any(os.scandir(folder / "runs"))):
            return
        if "runs" in names:
            (folder / "runs").rmdir()
        (folder / "lock").unlink()
        folder.rmdir()
    except OSError:
        pass  # a journal appeared, or the folder is busy: it stays, which is harmless


def _busy_line(root: Path) -> str:
    return f"{root}: another catsort is working on this folder"


def check_not_busy(root: Path) -> None:
    """Refuse, as a run would, a folder another catsort is sorting, without taking its lock: a dry run must also
    work where nothing can be written, and read while another run moves the photos it would report each one vanished."""
    try:
        import fcntl

        fd = os.open(root / JOURNAL_FOLDER / "lock", os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except (ImportError, OSError):
        return  # no lock file (no run is inside), or no advisory locks (Windows)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        raise FolderBusyError(_busy_line(root)) from None
    finally:
        os.close(fd)


@contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """One catsort at a time per folder; the OS drops the lock if the process dies.

    On leaving, ``.catsort/`` is removed if it holds no journal (:func:`_tidy`).
    """
    check_writable_places(root)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks from the standard library
        os.close(_open_lock(root))
        yield
        return
    for _ in range(_LOCK_ATTEMPTS):
        fd = _open_lock(root)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise FolderBusyError(_busy_line(root)) from None
        if _still_the_lock_file(root, fd):
            break
        os.close(fd)  # the run before tidied it away while this one waited: lock the folder's new one
    else:
        raise FolderBusyError(_busy_line(root))
    try:
        yield
    finally:
        try:
            _tidy(root)  # a refused run too (disk full, no key): it leaves no journal, so no .catsort/
        finally:
            os.close(fd)  # closing drops the lock
