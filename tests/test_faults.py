"""Faults of the filesystem, done for real: a message, never a traceback, and never a lost photo.

Each test builds the fault with the kernel (a small tmpfs that fills up, a read-only mount, a
``cats/`` that is another filesystem, an exFAT image through FUSE, paths longer than PATH_MAX), runs
the real CLI on it, and checks the exit code, the one-line message, that no temporary file is left,
that every photo's bytes are still there exactly once, and that ``--undo`` restores the tree exactly.
Mounts need root (and /dev/loop and FUSE for exFAT): elsewhere these tests skip, and every mount is
unmounted in a fixture's ``finally``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import BLUE, GREEN, RED, photo, remount, sh, tmpfs, tree_hashes, umount
from PIL import Image

from catsort import apply, fileops
from catsort.apply import Record, Started, apply_plan, undo_runs
from catsort.cli import EXIT_OK, EXIT_SOME_FAILED, EXIT_STOPPED, EXIT_UNUSABLE, main
from catsort.errors import FolderVanished
from catsort.fileops import read_journals
from catsort.model import Classifier, ModelCard
from catsort.plan import plan
from catsort.predict import predict, scan_folder
from catsort.scan import taken_names

PAGE = 4096


# --- photos and checks -------------------------------------------------------------------------


def album(folder: Path, cats: int, dogs: int, others: int = 0, size: tuple[int, int] = (640, 480)) -> dict[str, str]:
    """Noisy JPEGs of about 200 KB (at 640x480) the colour model sorts: red -> cats, blue -> dogs, green stays."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for count, colour, stem in ((dogs, BLUE, "blue"), (others, GREEN, "green"), (cats, RED, "red")):
        for i in range(count):
            rng = np.random.default_rng(n)
            pixels = np.asarray(photo(colour, size, seed=n)).astype(np.int16) + rng.integers(-30, 30, (size[1], size[0], 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{stem}_{i:02d}.jpg", quality=95)
            n += 1
    return tree_hashes(folder)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the filesystem of ``folder`` with one hidden file, then give back ``leave`` bytes (whole pages)."""
    filler = folder / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        block = b"\0" * (1 << 20)
        while block:
            try:
                os.write(fd, block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                block = block[: len(block) // 2]
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def leftovers(folder: Path) -> list[str]:
    """Temporary files catsort writes (``.catsort-*.tmp``, ``*.resign``), anywhere below ``folder``."""
    return sorted(str(p) for p in folder.rglob(".catsort-*") if p.is_file()) + sorted(str(p) for p in folder.rglob("*.resign"))


def each_photo_once(folder: Path, before: dict[str, str]) -> None:
    """Every original's bytes are below ``folder`` exactly once (moved or not), and nothing else is."""
    assert Counter(tree_hashes(folder).values()) == Counter(before.values())


def journals_sound(folder: Path) -> None:
    states, warnings = read_journals(folder)
    assert warnings == [], warnings


def cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(args)
    out, err = capsys.readouterr()
    text = out + err
    assert "Traceback" not in text
    return code, text


def one_line(text: str, needle: str) -> str:
    lines = [line for line in text.splitlines() if needle in line]
    assert len(lines) == 1, text
    return lines[0]


# --- the disk fills up -------------------------------------------------------------------------


def test_disk_full_while_copying_stops_cleanly_and_undoes(tmp_path: Path, mounts, colour_model: Path, capsys) -> None:
    pics = tmpfs(mounts, tmp_path / "pics", "4m")
    before = album(pics, cats=7, dogs=7)  # about 2.9 MB: the copies cannot all fit
    code, text = cli(["--headless", str(pics), "--copy", "--model", str(colour_model)], capsys)
    assert code == EXIT_STOPPED
    line = one_line(text, "the disk is full")
    assert line.startswith(f"catsort: {pics}/") and "stopped after" in line and f"catsort --undo {pics}" in line
    assert leftovers(pics) == []
    assert {k: v for k, v in tree_hashes(pics).items() if "/" not in k} == before, "originals untouched"
    journals_sound(pics)
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_OK and tree_hashes(pics) == before and leftovers(pics) == []


def test_disk_full_before_the_run_is_refused_and_nothing_is_touched(tmp_path: Path, mounts, colour_model: Path, capsys) -> None:
    pics = tmpfs(mounts, tmp_path / "pics", "4m")
    before = album(pics, cats=2, dogs=2)
    filler = fill(pics)
    code, text = cli(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == EXIT_UNUSABLE
    assert "the disk is full" in one_line(text, "catsort:") and "nothing was changed" in text
    assert tree_hashes(pics) == before and not (pics / "cats").exists() and not list(pics.rglob("*.jsonl"))
    filler.unlink()
    assert cli(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == EXIT_OK
    assert cli(["--undo", str(pics)], capsys)[0] == EXIT_OK and tree_hashes(pics) == before


def test_journal_write_hits_a_full_disk(tmp_path: Path, mounts, colour_model: Path, capsys, monkeypatch) -> None:
    """Moves need no room, the journal does: one free page holds about ten lines, then its write fails."""
    pics = tmpfs(mounts, tmp_path / "pics", "8m")
    before = album(pics, cats=15, dogs=15, size=(64, 48))
    monkeypatch.setattr(fileops, "MIN_FREE_BYTES", 0)  # let the run start on the nearly full disk
    filler = fill(pics, leave=PAGE)
    code, text = cli(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == EXIT_STOPPED
    line = one_line(text, "cannot write to the undo journal")
    assert "the disk is full" in line and "stopped after" in line and "--undo" in line
    moved = len(list((pics / "dogs").iterdir())) + (len(list((pics / "cats").iterdir())) if (pics / "cats").exists() else 0)
    assert 0 < moved < 30
    each_photo_once(pics, before)
    assert leftovers(pics) == []
    journals_sound(pics)  # cut back to whole, signed lines: settle and undo trust it
    # Still full: the journal cannot even be marked settled, but putting the photos back takes no room.
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_STOPPED and "every file of the run is back" in one_line(text, "catsort:")
    assert tree_hashes(pics) == before and leftovers(pics) == []
    journals_sound(pics)
    filler.unlink()
    code, text = cli(["--undo", str(pics)], capsys)  # once there is room, it marks the run undone
    assert code == EXIT_OK, text
    assert tree_hashes(pics) == before and leftovers(pics) == []
    assert "nothing to undo" in cli(["--undo", str(pics)], capsys)[1]


def test_disk_full_while_moving_to_a_cats_that_is_another_filesystem(tmp_path: Path, mounts, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    before = album(pics, cats=8, dogs=2)
    tmpfs(mounts, pics / "cats", "1m")  # a mount point: moves there are copies (EXDEV), and it is small
    code, text = cli(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == EXIT_STOPPED
    assert one_line(text, "the disk is full").startswith(f"catsort: {pics / 'cats'}: cannot move")
    assert leftovers(pics) == []
    each_photo_once(pics, before)
    assert len(list((pics / "dogs").iterdir())) == 2 and 0 < len(list((pics / "cats").iterdir())) < 8
    code, _ = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_OK and tree_hashes(pics) == before and leftovers(pics) == []


def test_cats_on_another_filesystem_moves_and_undoes(tmp_path: Path, mounts, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    before = album(pics, cats=3, dogs=2, others=1, size=(160, 120))
    tmpfs(mounts, pics / "cats", "8m")
    code, text = cli(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == EXIT_OK, text
    after = tree_hashes(pics)
    assert sorted(k for k in after if k.startswith("cats/")) == [f"cats/red_{i:02d}.jpg" for i in range(3)]
    assert not list(pics.glob("red_*")) and leftovers(pics) == []
    each_photo_once(pics, before)
    code, _ = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_OK and tree_hashes(pics) == before and leftovers(pics) == []


def test_an_undo_killed_mid_copy_leaves_nothing_the_next_undo_does_not_clear(tmp_path: Path, mounts, colour_model: Path,
                                                                             capsys) -> None:
    """From a cats/ on another disk an undo copies each photo home under a hidden name first. That name was the
    process's, so a kill -9 mid-copy left a whole hidden copy in the photo folder for good."""
    pics = tmp_path / "pics"
    before = album(pics, cats=3, dogs=0, size=(160, 120))
    tmpfs(mounts, pics / "cats", "8m")
    assert cli(["--headless", str(pics), "--model", str(colour_model), "-q"], capsys)[0] == EXIT_OK
    (state,), _ = read_journals(pics)
    moved = next(i for i in state.intents if i.op == "move")
    from catsort.layout import undo_temporary_name

    half = pics / undo_temporary_name(state.path.stem, moved.seq)
    half.write_bytes((pics / moved.dst).read_bytes()[:1000])  # what the killed undo had copied of it
    code, _ = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_OK and tree_hashes(pics) == before and leftovers(pics) == []


def test_disk_full_while_undoing(tmp_path: Path, mounts, colour_model: Path, capsys) -> None:
    """The photos went to a ``cats/`` on another disk; meanwhile the home disk filled up; undo needs room there."""
    pics = tmpfs(mounts, tmp_path / "pics", "3m")
    before = album(pics, cats=8, dogs=0)
    tmpfs(mounts, pics / "cats", "8m")
    assert cli(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == EXIT_OK
    filler = fill(pics, leave=300_000)  # room for one photo back, not eight
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_STOPPED
    line = one_line(text, "undo stopped after restoring")
    assert line.startswith(f"catsort: {pics}: cannot restore cats/") and "the disk is full" in line and "--undo again" in line
    assert leftovers(pics) == []
    each_photo_once(pics, before)
    filler.unlink()
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_OK, text
    assert tree_hashes(pics) == before and leftovers(pics) == []


def _pad_to_page(journal: Path) -> None:
    """Pad the last line with spaces (still the same JSON, the signature covers the record) to a page boundary,
    so that the next line needs a new page of the full disk."""
    data = journal.read_bytes()
    pad = -len(data) % PAGE
    journal.write_bytes(data[:-1] + b" " * pad + b"\n")


def test_disk_full_while_settling_an_interrupted_run(tmp_path: Path, mounts, colour_model: Path, capsys) -> None:
    pics = tmpfs(mounts, tmp_path / "pics", "4m")
    before = album(pics, cats=2, dogs=0, size=(160, 120))
    journal = fileops.Journal.start(pics, "move")
    journal.transfer(pics / "red_00.jpg", pics / "cats", "move")
    src, dst = pics / "red_01.jpg", pics / "cats" / "red_01.jpg"
    st = os.lstat(src)
    journal.write({"seq": 9, "op": "move", "src": "red_01.jpg", "dst": "cats/red_01.jpg", "size": st.st_size, "ino": st.st_ino,
                   "dev": st.st_dev, "tmp": f"cats/.catsort-{journal.id}-9.tmp"}, sync=True)
    os.link(src, dst)
    journal._file.close()  # killed between link and unlink
    _pad_to_page(journal.path)
    filler = fill(pics)
    # The full disk takes no line saying the run is settled, but settling and putting photos back take no room.
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_STOPPED
    line = one_line(text, "cannot write to the undo journal")
    assert "the disk is full" in line and "every file of the run is back" in line
    assert tree_hashes(pics) == before and leftovers(pics) == []
    journals_sound(pics)
    assert not read_journals(pics)[0][0].ended
    filler.unlink()
    code, text = cli(["--undo", str(pics)], capsys)  # with room, the journal is marked settled and undone
    assert code == EXIT_OK, text
    assert tree_hashes(pics) == before and leftovers(pics) == []
    assert read_journals(pics)[0][0].undone


# --- read-only places --------------------------------------------------------------------------


def test_read_only_folder_is_refused_and_undo_too(tmp_path: Path, mounts, colour_model: Path, capsys) -> None:
    pics = tmpfs(mounts, tmp_path / "pics", "4m")
    before = album(pics, cats=2, dogs=2, size=(160, 120))
    remount(pics, "ro")
    code, text = cli(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == EXIT_UNUSABLE
    assert one_line(text, "catsort:") == (
        f"catsort: {pics}: cannot write in this folder: it is read-only (Read-only file system); catsort keeps its undo "
        "journal there, so it changes nothing in a folder it cannot write")
    assert tree_hashes(pics) == before
    assert cli(["--undo", str(pics)], capsys) == (EXIT_OK, f"catsort: nothing to undo in {pics}\n")  # never sorted: no journal to read
    code, text = cli(["--headless", str(pics), "--model", str(colour_model), "--dry-run"], capsys)
    assert code == EXIT_OK  # the dry run says what the model sees, and that a real run would move nothing here
    assert one_line(text, "catsort:") == f"catsort: {pics}: this folder cannot be written (the disk is read-only): a real run would move nothing"
    assert "2 would be moved to cats/" in text
    remount(pics, "rw")
    assert cli(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == EXIT_OK
    sorted_tree = tree_hashes(pics)
    remount(pics, "ro")
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_UNUSABLE and "read-only" in one_line(text, "catsort:")
    assert tree_hashes(pics) == sorted_tree
    remount(pics, "rw")
    assert cli(["--undo", str(pics)], capsys)[0] == EXIT_OK and tree_hashes(pics) == before
    remount(pics, "ro")  # sorted once and undone since: nothing is left to undo, which is no lock's problem
    assert cli(["--undo", str(pics)], capsys) == (EXIT_OK, f"catsort: nothing to undo in {pics}\n")


def test_read_only_cats_stops_the_run(tmp_path: Path, mounts, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    before = album(pics, cats=2, dogs=2, size=(160, 120))
    cats = pics / "cats"
    cats.mkdir()
    mounts(cats, "--bind", str(cats))
    remount(cats, "bind,ro")
    code, text = cli(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == EXIT_STOPPED
    line = one_line(text, "read-only")
    assert line.startswith(f"catsort: {cats}: cannot move red_00.jpg there: it is read-only") and "stopped after 2 file(s) moved" in line
    assert sorted(p.name for p in (pics / "dogs").iterdir()) == ["blue_00.jpg", "blue_01.jpg"]
    each_photo_once(pics, before)
    assert leftovers(pics) == []
    assert cli(["--undo", str(pics)], capsys)[0] == EXIT_OK and tree_hashes(pics) == before


# --- files that change under us ----------------------------------------------------------------


def test_files_that_vanish_or_change_between_scan_and_move(tmp_path: Path, colour_model: Path) -> None:
    pics = tmp_path / "pics"
    album(pics, cats=3, dogs=1, size=(160, 120))
    classifier = Classifier(ModelCard.load(colour_model))
    folder = scan_folder(pics)
    decisions = plan(predict(folder, classifier), classifier.card.labels, classifier.card.threshold, taken=taken_names(folder.root))
    (pics / "red_00.jpg").unlink()  # deleted by the user while the window showed the plan
    with (pics / "red_01.jpg").open("ab") as f:
        f.write(b"edited")  # changed: the verdict was about other bytes
    before = tree_hashes(pics)
    items = list(apply_plan(folder.root, decisions))
    assert isinstance(items[0], Started)
    records = {Path(r.path).name: r for r in items[1:] if isinstance(r, Record)}
    assert records["red_00.jpg"].action == "error" and records["red_00.jpg"].error == "vanished since the scan; nothing done"
    assert records["red_01.jpg"].action == "error" and "changed since the scan" in records["red_01.jpg"].error
    assert records["red_02.jpg"].action == "move" and records["blue_00.jpg"].action == "move"
    assert (pics / "red_01.jpg").exists() and sorted(p.name for p in (pics / "cats").iterdir()) == ["red_02.jpg"]
    assert undo_runs(pics).problems == [] and tree_hashes(pics) == before


def test_a_folder_moved_away_mid_run_stops_the_run_in_one_line_and_undoes_where_it_went(
        tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    """Renamed (or its stick pulled out) after two photos moved: one stop line, not a failure per photo left."""
    pics, moved_to = tmp_path / "pics", tmp_path / "elsewhere"
    before = album(pics, cats=12, dogs=12, size=(160, 120))
    real_carry_out = apply._carry_out
    done: list[Record] = []

    def carry_out_then_move_the_folder(root: Path, journal, d) -> Record:
        record = real_carry_out(root, journal, d)
        done.append(record)
        if len(done) == 2:
            pics.rename(moved_to)
        return record

    monkeypatch.setattr(apply, "_carry_out", carry_out_then_move_the_folder)
    code, text = cli(["--headless", str(pics), "--model", str(colour_model), "--jobs", "1"], capsys)
    assert code == EXIT_STOPPED
    line = one_line(text, "the folder is gone")
    assert line.startswith(f"catsort: {pics}: the folder is gone (deleted, moved, or its disk removed) since the run began; stopped after 2 of 24 files")
    assert line.endswith(f"(should it come back, catsort --undo {pics} takes back what was done)")
    assert "vanished" not in text and "0 failed" in text, text
    monkeypatch.undo()
    code, text = cli(["--undo", str(moved_to)], capsys)
    assert code == EXIT_OK and tree_hashes(moved_to) == before


def test_a_folder_deleted_mid_scan_is_an_error_not_a_scan_of_failures(tmp_path: Path, colour_model: Path) -> None:
    pics = tmp_path / "pics"
    album(pics, cats=3, dogs=3, size=(160, 120))
    folder = scan_folder(pics)
    shutil.rmtree(pics)
    with pytest.raises(FolderVanished, match=f"^{pics}: the folder is gone"):
        list(predict(folder, Classifier(ModelCard.load(colour_model))))


# --- filesystems without hard links ------------------------------------------------------------


@pytest.fixture
def exfat(tmp_path: Path, mounts) -> Iterator[tuple[Path, Callable[[], None]]]:
    """An exFAT filesystem through FUSE (``link`` fails with EPERM there), and a function that re-plugs it."""
    for tool in ("mkfs.exfat", "losetup", "mount.exfat-fuse"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install exfat-fuse exfatprogs)")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    image, where = tmp_path / "stick.img", tmp_path / "stick"
    where.mkdir()
    with image.open("wb") as f:
        f.truncate(32 << 20)
    if sh("mkfs.exfat", str(image)).returncode != 0:
        pytest.skip("mkfs.exfat failed")
    loop = sh("losetup", "-f", "--show", str(image))
    if loop.returncode != 0:
        pytest.skip(f"no loop device: {loop.stderr.strip()}")
    device = loop.stdout.strip()

    def plug() -> None:
        proc = sh("mount.exfat-fuse", device, str(where))
        if proc.returncode != 0:
            pytest.skip(f"mount.exfat-fuse not permitted here: {proc.stderr.strip()}")

    def replug() -> None:
        umount(where)
        plug()

    try:
        plug()
        yield where, replug
    finally:
        umount(where)
        sh("losetup", "-d", device)


@pytest.mark.parametrize("copy", [False, True], ids=["move", "copy"])
def test_exfat_stick_sorts_and_undoes_after_being_plugged_in_again(exfat, colour_model: Path, capsys, copy: bool) -> None:
    stick, replug = exfat
    pics = stick / "DCIM"
    before = album(pics, cats=3, dogs=2, others=1, size=(160, 120))
    try:
        os.link(pics / "red_00.jpg", stick / "probe")
        pytest.fail("this exFAT has hard links: the test would not test the fallback")
    except OSError as exc:
        assert exc.errno == errno.EPERM
    code, text = cli(["--headless", str(pics), "--model", str(colour_model), *(["--copy"] if copy else [])], capsys)
    assert code == EXIT_OK, text
    assert len(list((pics / "cats").iterdir())) == 3 and leftovers(pics) == []
    replug()  # inode numbers change: undo must recognise the files by what the journal recorded of them
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_OK, text
    assert "problem" not in text and tree_hashes(pics) == before and leftovers(pics) == []


def test_a_stick_whose_fuse_driver_dies_mid_run_is_said_gone_and_undoes_once_plugged_again(
        exfat, colour_model: Path, capsys, monkeypatch) -> None:
    """The driver killed after two photos moved: every call then fails with "transport endpoint is not
    connected", the journal's first. Said as the folder gone, not as a journal that cannot be written."""
    stick, replug = exfat
    pics = stick / "DCIM"
    before = album(pics, cats=6, dogs=6, size=(160, 120))
    real_carry_out, done = apply._carry_out, []

    def carry_out_then_kill_the_driver(root: Path, journal, d) -> Record:
        done.append(real_carry_out(root, journal, d))
        if len(done) == 2:
            assert sh("pkill", "-9", "-f", f"mount.exfat-fuse .* {stick}$").returncode == 0
            while _connected(stick):  # the kernel has noticed
                time.sleep(0.01)
        return done[-1]

    monkeypatch.setattr(apply, "_carry_out", carry_out_then_kill_the_driver)
    code, text = cli(["--headless", str(pics), "--model", str(colour_model), "--jobs", "1"], capsys)
    assert code == EXIT_STOPPED, text
    assert one_line(text, "catsort:") == (f"catsort: {pics}: the folder is gone (deleted, moved, or its disk removed) since the run "
                                          f"began; stopped after 2 of 12 files (should it come back, catsort --undo {pics} takes back what was done)")
    monkeypatch.undo()
    replug()
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_OK, text
    assert tree_hashes(pics) == before and leftovers(pics) == []


def _connected(mount: Path) -> bool:
    try:
        os.stat(mount)
        return True
    except OSError:
        return False


# --- very long paths ---------------------------------------------------------------------------


def test_very_long_names_and_paths(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    long_name = "chat-" + "é" * 122 + ".jpg"  # 253 bytes: a taken name plus " (1)" must be shortened
    assert len(long_name.encode()) == 253
    (pics / "cats").mkdir(parents=True)
    photo(RED, seed=1).save(pics / long_name, quality=90)
    photo(RED, seed=2).save(pics / "cats" / long_name, quality=90)
    # A folder deeper than PATH_MAX (4096 bytes), made one level at a time as a user's tools can.
    fd = os.open(pics, os.O_RDONLY)
    try:
        for _ in range(24):
            os.mkdir("d" * 200, dir_fd=fd)
            fd, old = os.open("d" * 200, os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        with os.fdopen(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            photo(RED, seed=3).save(f, "JPEG", quality=90)
        deep = _sha_at(fd, "deep.jpg")
    finally:
        os.close(fd)
    before = walk_hashes(pics)
    code, text = cli(["--headless", "-r", str(pics), "--model", str(colour_model)], capsys)
    assert code == EXIT_SOME_FAILED, text
    assert "File name too long" in text  # the folder it could not enter, reported in one line; the rest sorted
    names = sorted(p.name for p in (pics / "cats").iterdir())
    assert len(names) == 2 and all(len(n.encode()) <= 255 for n in names) and any(n.endswith(" (1).jpg") for n in names)
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_OK, text
    assert walk_hashes(pics) == before
    fd = os.open(pics, os.O_RDONLY)
    try:
        for _ in range(24):
            fd, old = os.open("d" * 200, os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        assert _sha_at(fd, "deep.jpg") == deep
    finally:
        os.close(fd)


def _sha_at(dir_fd: int, name: str) -> str:
    fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    try:
        return hashlib.sha256(os.read(fd, 1 << 20)).hexdigest()
    finally:
        os.close(fd)


def walk_hashes(folder: Path) -> dict[str, str]:
    """Like ``tree_hashes``, but skipping what lies beyond PATH_MAX (os.walk ignores the folders it cannot enter)."""
    out = {}
    for here, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(here) / name
            out[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_no_traceback_from_a_real_process_on_a_full_disk(tmp_path: Path, mounts, colour_model: Path) -> None:
    """The same as a user sees it: a separate process, its exit code and its whole stderr."""
    pics = tmpfs(mounts, tmp_path / "pics", "4m")
    before = album(pics, cats=7, dogs=7)
    proc = subprocess.run([sys.executable, "-m", "catsort", "--headless", str(pics), "--copy", "--model", str(colour_model), "-q"],
                          capture_output=True, text=True)
    assert proc.returncode == EXIT_STOPPED and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("catsort:")]) == 1, proc.stderr
    assert leftovers(pics) == []
    proc = subprocess.run([sys.executable, "-m", "catsort", "--undo", str(pics)], capture_output=True, text=True)
    assert proc.returncode == EXIT_OK and "Traceback" not in proc.stderr
    assert tree_hashes(pics) == before


def test_undo_with_a_read_only_cats_stops_and_finishes_later(tmp_path: Path, mounts, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    before = album(pics, cats=2, dogs=1, size=(160, 120))
    assert cli(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == EXIT_OK
    cats = pics / "cats"
    mounts(cats, "--bind", str(cats))
    remount(cats, "bind,ro")  # e.g. the card's write-protect switch, or a share mounted read-only
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_STOPPED
    line = one_line(text, "undo stopped after restoring")
    assert line.startswith(f"catsort: {cats}/red_0") and "it is read-only" in line
    each_photo_once(pics, before)
    assert leftovers(pics) == []
    umount(cats)
    code, text = cli(["--undo", str(pics)], capsys)
    assert code == EXIT_OK, text
    assert tree_hashes(pics) == before and leftovers(pics) == []
