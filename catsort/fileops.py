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

import errno
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from catsort import signing
from catsort.checksum import file_sha256
from catsort.errors import FileOpError, FolderBusyError, FolderError
from catsort.layout import JOURNAL_FOLDER, OUTPUT_FOLDERS, candidate_names, temporary_name

__all__ = ["FileOpError", "FolderBusyError", "Journal", "JournalState", "folder_lock", "read_journals", "settle_interrupted"]

_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS, errno.EACCES}
MAX_JOURNAL_BYTES = 256 << 20
"""A run over 100,000 photos writes about 60 MB; anything much larger is not one of ours."""
TRUST_HINT = "if this journal is yours (from another computer of yours or a restored backup), act on it with --trust-journals"


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


# --- where catsort may write -------------------------------------------------------------------


def check_folder(root: Path) -> Path:
    """The folder, resolved, or a :class:`FolderError` that says why it cannot be sorted."""
    if not root.exists():
        raise FolderError(f"{root}: no such folder")
    if not root.is_dir():
        raise FolderError(f"{root}: not a folder")
    return root.resolve()


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
    if src.parts[0] in OUTPUT_FOLDERS.values() or src.parts[0] == JOURNAL_FOLDER or any(p.startswith(".") for p in src.parts):
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
    abandoned: bool = False
    done: bool = False


_INTENT_TYPES = {"seq": int, "op": str, "src": str, "dst": str, "size": int, "ino": int, "dev": int, "tmp": str}


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
        data = path.read_bytes()
        state = cls(path, complete_bytes=data.rfind(b"\n") + 1)
        key = signing.journal_key()
        previous, header, by_seq = path.name, None, {}
        for number, raw in enumerate(data[: state.complete_bytes].splitlines(), 1):
            try:
                rec = json.loads(raw)
            except ValueError:
                raise untrusted(f"line {number} is not JSON: not a catsort journal, or altered") from None
            if not isinstance(rec, dict):
                raise untrusted(f"line {number} is not a record: not a catsort journal")
            mac = rec.pop("mac", None)
            if header is None:
                if "catsort_journal" not in rec:
                    raise untrusted("it does not start like a catsort journal")
                header = rec
            if not trust and not signing.verify(key, previous, rec, mac):
                if number > 1:
                    reason = f"line {number} was changed after catsort wrote it"
                elif mac is None:
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
        if trust and state.intents:
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
        tmp = self.path.with_name(self.path.name + ".resign")
        with tmp.open("w", encoding="ascii") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.last_mac, self.complete_bytes = previous, self.path.stat().st_size

    def append(self, record: dict) -> None:
        """Add a signed line (settled, end, undone), first cutting off a line a power cut tore."""
        mac = signing.sign(signing.journal_key(), self.last_mac, record)
        if self.path.stat().st_size != self.complete_bytes:
            os.truncate(self.path, self.complete_bytes)
        line = (json.dumps({**record, "mac": mac}) + "\n").encode("ascii")
        with self.path.open("ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.last_mac, self.complete_bytes = mac, self.complete_bytes + len(line)


class Journal:
    """Append-only, signed JSON-lines log of one run's operations."""

    def __init__(self, root: Path, path: Path) -> None:
        self.root = root
        self.path = path
        self.id = path.stem
        self._key = signing.journal_key()
        self._mac = path.name
        self._file = path.open("x", encoding="ascii")
        self._seq = 0
        self._touched = False

    @classmethod
    def start(cls, root: Path, mode: str) -> Journal:
        check_writable_places(root)
        folder = root / JOURNAL_FOLDER / "runs"
        if _through_link(root, f"{JOURNAL_FOLDER}/runs/x"):
            raise FolderError(f"{folder} is a symbolic link; catsort never writes its journal through a link: remove it")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 1_000_000_000:09d}-{os.getpid()}.jsonl"
        journal = cls(root, path)
        journal.write({"catsort_journal": 2, "started": _now(), "mode": mode, "key": signing.key_id(journal._key)}, sync=True)
        _fsync_folder(folder)
        return journal

    def write(self, record: dict, sync: bool) -> None:
        self._touched |= "op" in record
        self._mac = signing.sign(self._key, self._mac, record)
        # ASCII JSON: file names that are not valid UTF-8 survive as escapes instead of failing the write.
        self._file.write(json.dumps({**record, "mac": self._mac}) + "\n")
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def rel(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

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
        settle(self.root, JournalState.read(self.root, self.path))

    def transfer(self, src: Path, folder: Path, op: str, first_name: str | None = None) -> Path:
        """Move (``op="move"``) or copy ``src`` into ``folder`` under a free name; return where it went.

        ``first_name`` is the name the plan showed the user; the next free one is used if it was taken since.
        """
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
        st = _lstat(folder)
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):  # became a link or a file since the run started
                raise FileOpError(f"{folder.name}/ is not a real folder any more; nothing written through it")
            return
        self.write({"seq": 0, "op": "mkdir", "src": "", "dst": self.rel(folder)}, sync=True)
        folder.mkdir(exist_ok=True)


def _starting_at(first: str, names: Iterator[str]) -> Iterator[str]:
    """The candidate names from ``first`` on (the plan may already have skipped taken ones)."""
    for name in names:
        if name == first:
            yield name
            yield from names
            return


# --- recovery and undo -------------------------------------------------------------------------


def _is_ours(intent: Intent, dst: Path, st: os.stat_result) -> bool:
    """Is the file now at ``dst`` the one this intent put there (same inode, or same verified bytes)?"""
    if not stat.S_ISREG(st.st_mode):
        return False
    if (st.st_ino, st.st_dev) == (intent.ino, intent.dev):
        return True
    return intent.sha256 is not None and st.st_size == intent.size and file_sha256(dst) == intent.sha256


def _same_file(a: Path, b: Path) -> bool:
    sa, sb = os.lstat(a), os.lstat(b)
    if not (stat.S_ISREG(sa.st_mode) and stat.S_ISREG(sb.st_mode)):
        return False
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
        moved = intent.op == "move" and st is not None and _lstat(src) is not None and _is_ours(intent, dst, st)
        if moved and _same_file(src, dst):
            src.unlink()
    state.append({"settled": _now()})
    state.append({"end": _now()})
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
                target = _restore(src, dst)
                result.restored += 1
                if target != src:
                    result.problems.append(f"{intent.src}: that name is taken now; restored as {target.name}")
        except OSError as exc:
            result.problems.append(f"{intent.dst}: cannot restore: {exc.strerror or exc}")
    if not result.problems:
        state.append({"undone": _now()})
        state.undone = True
    return result


def read_journals(root: Path, trust: bool = False) -> tuple[list[JournalState], list[str]]:
    """Every journal of the folder that can be trusted, oldest first, and a line for each that cannot."""
    folder = root / JOURNAL_FOLDER / "runs"
    if _through_link(root, f"{JOURNAL_FOLDER}/runs/x") or not folder.is_dir():
        return [], []
    states, warnings = [], []
    for path in sorted(folder.glob("*.jsonl")):
        try:
            states.append(JournalState.read(root, path, trust))
        except UntrustedJournal as exc:
            warnings.append(str(exc))
        except OSError as exc:
            warnings.append(f"ignoring {path}: cannot read it ({exc.strerror or exc})")
    return states, warnings


def settle_interrupted(root: Path, trust: bool = False) -> tuple[int, list[str]]:
    """Settle every trusted journal a killed run left open: (how many there were, lines for the untrusted)."""
    states, warnings = read_journals(root, trust)
    open_ones = [j for j in states if not j.ended]
    for state in open_ones:
        settle(root, state)
    return len(open_ones), warnings


@contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """One catsort at a time per folder; the OS drops the lock if the process dies."""
    check_writable_places(root)
    folder = root / JOURNAL_FOLDER
    folder.mkdir(exist_ok=True)
    try:  # never through a link someone left in place of the lock file
        fd = os.open(folder / "lock", os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise FolderError(f"{folder / 'lock'}: cannot open the folder's lock ({exc.strerror or exc})") from None
    with os.fdopen(fd, "a") as f:
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
