"""Signatures that tell journals written by this user's catsort from journals someone else wrote.

A journal inside a shared drive or an unzipped photo pack could have been written by anyone, and
recovery and undo act on what it says. Each line carries an HMAC-SHA256 chained over the line
before it (the first over the journal's file name), with a key only this user can read, so a line
that was added, changed, reordered or copied from another journal breaks the chain. A line torn
by a power cut is the last one and announces an operation that never started.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from pathlib import Path

from platformdirs import user_config_path

from catsort.errors import CatsortError

KEY_FILE = "journal.key"


def config_folder() -> Path:
    """The per-user folder for the key (``CATSORT_CONFIG_DIR`` overrides it, for tests and portable use)."""
    override = os.environ.get("CATSORT_CONFIG_DIR")
    return Path(override) if override else user_config_path("catsort", appauthor=False)


def _read_or_create_key(path: Path) -> bytes:
    """The key at ``path``, or a new one put there whole. Written to a file of its own first and then linked into
    place, so that a second catsort starting at the same moment (or one killed while it wrote) never finds the
    key half written, which it would take for a damaged one; the link fails if another got there first, and
    that key is then everyone's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        key = secrets.token_bytes(32)
        fd, tmp = tempfile.mkstemp(prefix=".journal-key-", dir=path.parent)  # mode 0600
        try:
            _write_durably(fd, key)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another catsort made it meanwhile
            except OSError:  # no hard links here (a portable config folder on an exFAT stick)
                _create_exclusively(path, key)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    for _ in range(KEY_WAITS):
        key = path.read_bytes()
        if len(key) >= 32:
            return key
        time.sleep(0.05)  # only where it cannot be linked whole: another catsort may be writing it this moment
    raise CatsortError(f"{path}: the journal key is damaged (delete it; old journals then need --trust-journals)")


KEY_WAITS = 20
"""Reads of a short key before it is called damaged, 50 ms apart."""


def _create_exclusively(path: Path, key: bytes) -> None:
    """The key written in place, where no other catsort made one first (exclusive, if not whole at every moment)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    _write_durably(fd, key)


def _write_durably(fd: int, key: bytes) -> None:
    """``key`` into the open file ``fd``, on the disk before the file is closed."""
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())


_keys: dict[Path, bytes] = {}


def journal_key() -> bytes:
    """This user's key, created (readable by the user only) the first time a journal is signed."""
    path = config_folder() / KEY_FILE
    if path not in _keys:
        try:
            _keys[path] = _read_or_create_key(path)
        except OSError as exc:
            raise CatsortError(f"{path}: cannot read or create the key that signs undo journals ({exc.strerror or exc})") from None
    return _keys[path]


def key_id(key: bytes) -> str:
    """A short public name of a key, written in each journal's header, so a message can tell
    "signed on another machine" from "altered"."""
    return hashlib.sha256(b"catsort key id" + key).hexdigest()[:12]


def sign(key: bytes, previous: str, record: dict) -> str:
    """The signature of ``record`` following the line signed ``previous``."""
    body = json.dumps(record, sort_keys=True)  # ASCII: names that are not valid UTF-8 stay escapes
    # surrogateescape: a journal file whose own name is not valid UTF-8 signs its raw bytes.
    return hmac.new(key, (previous + "\n" + body).encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def verify(key: bytes, previous: str, record: dict, mac: object) -> bool:
    return isinstance(mac, str) and hmac.compare_digest(sign(key, previous, record), mac)
