"""Kill a real sorting process at random moments, many times: no photo is ever lost or duplicated."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import make_album, tree_hashes

from catsort.fileops import read_journals

KILLS = 16


def _catsort(*args: str) -> list[str]:
    return [sys.executable, "-m", "catsort", *args]


def _check_nothing_lost(folder: Path, originals: dict[str, str]) -> None:
    """Each original's bytes exist exactly once, or twice as two names of one inode (settled next run)."""
    seen: dict[str, list[Path]] = {}
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            seen.setdefault(hashlib.sha256(p.read_bytes()).hexdigest(), []).append(p)
    assert Counter(originals.values()).keys() == seen.keys(), "a photo is missing or a foreign file appeared"
    for digest, paths in seen.items():
        inodes = {os.stat(p).st_ino for p in paths}
        assert len(inodes) == 1, f"{digest[:8]} exists as separate copies: {paths}"


def test_kill_minus_9_at_random_moments(tmp_path: Path, colour_model: Path) -> None:
    rng = random.Random(1234)
    album = tmp_path / "album"
    originals = make_album(album, cats=60, dogs=60, others=30)
    start = time.monotonic()
    subprocess.run(_catsort("--headless", str(album), "--model", str(colour_model), "-q"), check=True)
    full_run = time.monotonic() - start
    subprocess.run(_catsort("--undo", str(album)), check=True)
    assert tree_hashes(album) == originals

    for attempt in range(KILLS):
        proc = subprocess.Popen(_catsort("--headless", str(album), "--model", str(colour_model), "-q"))
        time.sleep(rng.uniform(0.0, full_run))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _check_nothing_lost(album, originals)
        if attempt % 2:
            subprocess.run(_catsort("--undo", str(album)), check=True)
        else:
            subprocess.run(_catsort("--headless", str(album), "--model", str(colour_model), "-q"), check=True)
            assert len(list((album / "cats").iterdir())) == 60 and len(list((album / "dogs").iterdir())) == 60
            subprocess.run(_catsort("--undo", "--all", str(album)), check=True)
        assert tree_hashes(album) == originals, f"attempt {attempt}: undo did not restore the tree"
    shutil.rmtree(album / ".catsort")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "term", "hup"])
def test_ctrl_c_stops_cleanly(tmp_path: Path, colour_model: Path, signum: int) -> None:
    """Ctrl-C, a shutdown's SIGTERM and a closed terminal's SIGHUP: the run says it stopped and ends its journal."""
    album = tmp_path / "album"
    originals = make_album(album, cats=60, dogs=60, others=30)
    proc = subprocess.Popen(_catsort("--headless", str(album), "--model", str(colour_model), "-q"), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (album / "cats").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # interrupt once moving has begun, as a user watching the progress would
    proc.send_signal(signum)
    _, err = proc.communicate()
    _check_nothing_lost(album, originals)
    if proc.returncode == 130:
        assert "interrupted after" in err and "Traceback" not in err, err
        states, _ = read_journals(album)
        assert [s.ended for s in states] == [True], "the journal was ended by the run, not left to the next one"
    else:
        assert proc.returncode == 0, err  # finished before the signal arrived
    subprocess.run(_catsort("--undo", str(album)), check=True)
    assert tree_hashes(album) == originals
