"""The journal and the moves behind it: every crash state settles, undo restores, nothing is overwritten."""

from __future__ import annotations

import ctypes
import errno
import json
import os
from pathlib import Path

import pytest
from conftest import RED, crashed, make_album, move_announced, photo, tree_hashes

from catsort import fileops
from catsort.apply import undo_runs
from catsort.fileops import FileOpError, FolderBusyError, Journal, folder_lock, read_journals, settle_interrupted
from catsort.layout import NAME_MAX_BYTES, candidate_names


def test_crash_after_journal_before_move(tmp_path: Path) -> None:
    before, journal, _, _ = move_announced(tmp_path)
    crashed(journal)
    assert settle_interrupted(tmp_path) == (1, [])
    assert tree_hashes(tmp_path) == before
    assert settle_interrupted(tmp_path) == (0, [])
    assert undo_runs(tmp_path).problems == []
    assert tree_hashes(tmp_path) == before


def test_crash_between_link_and_unlink(tmp_path: Path) -> None:
    before, journal, src, dst = move_announced(tmp_path)
    os.link(src, dst)
    crashed(journal)
    settle_interrupted(tmp_path)
    assert not src.exists() and dst.exists(), "the move is finished, not duplicated"
    result = undo_runs(tmp_path)
    assert result.restored == 1 and result.problems == []
    assert tree_hashes(tmp_path) == before


def test_next_run_settles_before_it_scans(tmp_path: Path, colour_model: Path, capsys) -> None:
    """A run killed mid-move is finished before the next run lists the folder, so no photo reads as vanished.

    Scanning first listed red_0.jpg at its old place, settling then finished its move, and the run
    reported it "vanished since the scan" and exited 1 (seen about once in ten kill -9 runs).
    """
    from catsort.cli import main

    _, journal, src, dst = move_announced(tmp_path)
    make_album(tmp_path, cats=2, dogs=1, others=1)  # the same red_0.jpg and a few more
    os.link(src, dst)
    crashed(journal)
    capsys.readouterr()
    code = main(["--headless", str(tmp_path), "--model", str(colour_model), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["failed"] == 0 and summary["settled_interrupted_runs"] == 1, summary
    assert not src.exists() and dst.exists()
    assert sorted(p.name for p in (tmp_path / "cats").iterdir()) == ["red_0.jpg", "red_1.jpg"]


def test_a_run_reads_each_earlier_journal_once(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    """Settling before the scan and again under the run's lock must not read and check the folder's history twice."""
    from catsort import fileops
    from catsort.cli import main

    make_album(tmp_path, cats=2, dogs=1, others=1)
    assert main(["--headless", str(tmp_path), "--model", str(colour_model), "-q"]) == 0
    make_album(tmp_path / "more", cats=1, dogs=0, others=0)
    (tmp_path / "more" / "red_0.jpg").rename(tmp_path / "new.jpg")
    reads: list[Path] = []
    real_read = fileops.JournalState.read

    def counted(root: Path, path: Path, trust: bool = False) -> fileops.JournalState:
        reads.append(path)
        return real_read(root, path, trust)

    monkeypatch.setattr(fileops.JournalState, "read", staticmethod(counted))
    capsys.readouterr()
    assert main(["--headless", str(tmp_path), "--model", str(colour_model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["moved"] == 1
    assert len(reads) == len(set(reads)) == 1, reads


def test_crash_during_cross_device_copy_leaves_no_partial_file(tmp_path: Path) -> None:
    before, journal, src, dst = move_announced(tmp_path)
    tmp = dst.with_name(f".catsort-{journal.id}-1.tmp")
    tmp.write_bytes(src.read_bytes()[:100])
    crashed(journal)
    settle_interrupted(tmp_path)
    assert not tmp.exists() and not dst.exists() and tree_hashes(tmp_path) == before


def test_crash_after_verified_cross_device_copy(tmp_path: Path) -> None:
    before, journal, src, dst = move_announced(tmp_path)
    dst.write_bytes(src.read_bytes())  # a separate inode, as on another device
    import hashlib

    journal.write({"seq": 1, "verified": hashlib.sha256(src.read_bytes()).hexdigest()}, sync=True)
    crashed(journal)
    settle_interrupted(tmp_path)
    assert not src.exists() and dst.exists()
    undo_runs(tmp_path)
    assert tree_hashes(tmp_path) == before


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    before = make_album(tmp_path, cats=1, dogs=0, others=0)
    journal = Journal.start(tmp_path, "move")
    journal._file.write('{"seq": 1, "op": "mo')
    crashed(journal)
    settle_interrupted(tmp_path)
    assert tree_hashes(tmp_path) == before and read_journals(tmp_path)[0][0].ended


@pytest.mark.parametrize("failure", [errno.EXDEV, errno.EPERM])
def test_cross_device_and_no_hardlink_filesystems(tmp_path: Path, monkeypatch, failure: int) -> None:
    """EXDEV: copy, verify, then unlink. EPERM (no hard links, e.g. FAT): a rename that refuses a taken name."""
    before = make_album(tmp_path, cats=2, dogs=0, others=0)
    real_link = os.link

    def link(src, dst, **kw):
        if failure == errno.EPERM or Path(src).parent != Path(dst).parent:
            raise OSError(failure, os.strerror(failure))
        return real_link(src, dst, **kw)

    monkeypatch.setattr(os, "link", link)
    journal = Journal.start(tmp_path, "move")
    for name in ("red_0.jpg", "red_1.jpg"):
        journal.transfer(tmp_path / name, tmp_path / "cats", "move")
    journal.close()
    assert sorted(tree_hashes(tmp_path)) == ["cats/red_0.jpg", "cats/red_1.jpg"]
    assert sorted(tree_hashes(tmp_path).values()) == sorted(before.values())
    assert not list((tmp_path / "cats").glob(".catsort-*"))
    assert undo_runs(tmp_path).problems == []
    assert tree_hashes(tmp_path) == before


@pytest.mark.parametrize(("failure", "op"), [(errno.EPERM, "move"), (errno.EACCES, "move"), (errno.EPERM, "copy")])
def test_without_hard_links_each_rename_comes_after_its_journaled_sha(tmp_path: Path, monkeypatch, failure: int, op: str) -> None:
    """What reaches the disk where ``link`` fails: a move journals the photo's sha256, then renames it
    (EPERM is the filesystem's: the second photo is not tried with ``link`` again; EACCES may be this
    folder's, so it is); a copy renames its verified temporary file into place."""
    make_album(tmp_path, cats=2, dogs=0, others=0)
    events: list[tuple[str, ...]] = []
    real_rename = fileops._rename_unless_taken

    def link(src, dst, **kw):
        events.append(("link", Path(dst).name))
        raise OSError(failure, os.strerror(failure))

    def rename(src, dst):
        last = json.loads(journal.path.read_text().splitlines()[-1])
        events.append(("rename", Path(src).name, Path(dst).name, f"journaled {sorted(set(last) - {'mac'})}"))
        real_rename(src, dst)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(fileops, "_rename_unless_taken", rename)
    journal = Journal.start(tmp_path, op)
    for name in ("red_0.jpg", "red_1.jpg"):
        journal.transfer(tmp_path / name, tmp_path / "cats", op)
    journal.close()
    verified = "journaled ['seq', 'verified']"
    if op == "copy":
        expected = [("link", "red_0.jpg"), ("rename", f".catsort-{journal.id}-1.tmp", "red_0.jpg", verified),
                    ("link", "red_1.jpg"), ("rename", f".catsort-{journal.id}-2.tmp", "red_1.jpg", verified)]
    else:
        expected = [("link", "red_0.jpg"), ("rename", "red_0.jpg", "red_0.jpg", verified),
                    *([("link", "red_1.jpg")] if failure == errno.EACCES else []), ("rename", "red_1.jpg", "red_1.jpg", verified)]
    assert events == expected
    assert sorted(tree_hashes(tmp_path)) == (["cats/red_0.jpg", "cats/red_1.jpg"] + (["red_0.jpg", "red_1.jpg"] if op == "copy" else []))


@pytest.mark.skipif(fileops._renameat2() is None, reason="no renameat2 in this C library")
def test_without_hard_links_a_name_taken_after_the_check_is_never_overwritten(tmp_path: Path, monkeypatch) -> None:
    """The race a check-then-rename loses: another program saves ``cats/red_0.jpg`` after catsort saw the
    name free and journaled its move. The rename refuses it (RENAME_NOREPLACE), and the photo goes to the
    next free name; the newcomer keeps its bytes."""
    before = make_album(tmp_path, cats=1, dogs=0, others=0)
    intruder = photo(RED, seed=7)
    real_sha = fileops.file_sha256

    def link(src, dst, **kw):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    def sha_then_someone_saves(path: Path) -> str:  # the move journals its sha256 between the check and the rename
        digest = real_sha(path)
        if not (tmp_path / "cats" / "red_0.jpg").exists():
            intruder.save(tmp_path / "cats" / "red_0.jpg")
        return digest

    real_lexists = os.path.lexists
    taken = tmp_path / "cats" / "red_0.jpg"

    def lexists_as_checked_before(path) -> bool:  # every check of that name was made before it was taken
        return False if Path(path) == taken else real_lexists(path)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(fileops, "file_sha256", sha_then_someone_saves)
    monkeypatch.setattr(os.path, "lexists", lexists_as_checked_before)
    journal = Journal.start(tmp_path, "move")
    assert journal.transfer(tmp_path / "red_0.jpg", tmp_path / "cats", "move") == tmp_path / "cats" / "red_0 (1).jpg"
    journal.close()
    after = tree_hashes(tmp_path)
    assert after["cats/red_0 (1).jpg"] == before["red_0.jpg"]
    assert after["cats/red_0.jpg"] != before["red_0.jpg"] and set(after) == {"cats/red_0.jpg", "cats/red_0 (1).jpg"}


def test_a_filesystem_without_rename_flags_falls_back_to_check_then_rename(tmp_path: Path, monkeypatch) -> None:
    """FUSE mounts (exfat-fuse) answer RENAME_NOREPLACE with EINVAL: the move still happens, and a name
    already taken is still refused."""
    monkeypatch.setattr(fileops, "_renameat2", lambda: lambda *args: (ctypes.set_errno(errno.EINVAL), -1)[1])
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    with pytest.raises(FileExistsError):
        fileops._rename_unless_taken(tmp_path / "a", tmp_path / "b")
    fileops._rename_unless_taken(tmp_path / "a", tmp_path / "c")
    assert (tmp_path / "b").read_bytes() == b"b" and (tmp_path / "c").read_bytes() == b"a" and not (tmp_path / "a").exists()


def test_vanished_file_is_an_error_and_the_run_goes_on(tmp_path: Path) -> None:
    make_album(tmp_path, cats=1, dogs=0, others=0)
    journal = Journal.start(tmp_path, "move")
    with pytest.raises(FileOpError, match="cannot read file"):
        journal.transfer(tmp_path / "gone.jpg", tmp_path / "cats", "move")
    journal.transfer(tmp_path / "red_0.jpg", tmp_path / "cats", "move")
    journal.close()
    assert (tmp_path / "cats" / "red_0.jpg").exists()


def test_undo_when_the_name_was_taken_again(tmp_path: Path) -> None:
    make_album(tmp_path, cats=1, dogs=0, others=0)
    original = (tmp_path / "red_0.jpg").read_bytes()
    journal = Journal.start(tmp_path, "move")
    journal.transfer(tmp_path / "red_0.jpg", tmp_path / "cats", "move")
    journal.close()
    photo(RED, seed=42).save(tmp_path / "red_0.jpg")  # the user saved a new photo under the old name
    newer = (tmp_path / "red_0.jpg").read_bytes()
    result = undo_runs(tmp_path)
    assert (tmp_path / "red_0.jpg").read_bytes() == newer
    assert (tmp_path / "red_0 (1).jpg").read_bytes() == original
    assert "restored as red_0 (1).jpg" in result.problems[0]


def test_empty_runs_leave_nothing_to_undo(tmp_path: Path) -> None:
    before = make_album(tmp_path, cats=1, dogs=0, others=0)
    journal = Journal.start(tmp_path, "move")
    journal.transfer(tmp_path / "red_0.jpg", tmp_path / "cats", "move")
    journal.close()
    Journal.start(tmp_path, "move").close()  # a run that moved nothing
    Journal.start(tmp_path, "move").abort()  # interrupted before its first move
    crashed(Journal.start(tmp_path, "move"))  # killed before its first move
    assert settle_interrupted(tmp_path) == (1, [])
    result = undo_runs(tmp_path)  # must undo the run that moved something, not an empty one
    assert (result.runs, result.restored) == (1, 1)
    assert tree_hashes(tmp_path) == before


def test_one_catsort_per_folder(tmp_path: Path) -> None:
    with folder_lock(tmp_path), pytest.raises(FolderBusyError), folder_lock(tmp_path):
        pass


def test_a_run_that_changed_nothing_leaves_no_catsort_folder_and_one_that_moved_keeps_its_journal(tmp_path: Path) -> None:
    make_album(tmp_path, cats=1, dogs=0, others=0)
    with folder_lock(tmp_path):
        Journal.start(tmp_path, "move").close()  # nothing moved: no journal
    assert sorted(p.name for p in tmp_path.iterdir()) == ["red_0.jpg"]
    with folder_lock(tmp_path):
        journal = Journal.start(tmp_path, "move")
        journal.transfer(tmp_path / "red_0.jpg", tmp_path / "cats", "move")
        journal.close()
    assert len(list((tmp_path / ".catsort" / "runs").iterdir())) == 1 and (tmp_path / ".catsort" / "lock").is_file()


def test_a_run_refused_inside_the_lock_leaves_no_catsort_folder(tmp_path: Path) -> None:
    from catsort.fileops import RunStopped

    make_album(tmp_path, cats=1, dogs=0, others=0)
    with pytest.raises(RunStopped), folder_lock(tmp_path):  # as a disk too full to begin raises, before any journal
        raise RunStopped(f"{tmp_path}: the disk is full (20 KB free); nothing was changed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["red_0.jpg"]


def test_a_run_waiting_on_a_lock_that_was_tidied_away_locks_the_new_one(tmp_path: Path) -> None:
    """Run A ends and removes ``.catsort/``; run B had opened the old lock file just before. B's lock on
    that unlinked file guards nothing, so it must not count: B takes the lock file that exists now."""
    import fcntl

    from catsort.fileops import _open_lock, _still_the_lock_file

    with folder_lock(tmp_path):
        waiting = _open_lock(tmp_path)  # B opened it while A held it
    assert not (tmp_path / ".catsort").exists()
    fcntl.flock(waiting, fcntl.LOCK_EX | fcntl.LOCK_NB)  # A is gone, so B's flock succeeds ...
    try:
        assert not _still_the_lock_file(tmp_path, waiting)  # ... on a file that is no longer the lock
        with folder_lock(tmp_path):  # a new run locks the new file, which B's stale lock does not hold
            assert (tmp_path / ".catsort" / "lock").is_file()
            fresh = _open_lock(tmp_path)
            with pytest.raises(OSError):
                fcntl.flock(fresh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.close(fresh)
    finally:
        os.close(waiting)


def test_candidate_names_fit_the_filesystem() -> None:
    names = candidate_names("é" * 200 + ".jpeg")
    first, second = next(names), next(names)
    assert len(first.encode()) <= NAME_MAX_BYTES and len(second.encode()) <= NAME_MAX_BYTES
    assert second.endswith(" (1).jpeg")


def test_journal_is_json_lines_with_inode(tmp_path: Path) -> None:
    make_album(tmp_path, cats=1, dogs=0, others=0)
    journal = Journal.start(tmp_path, "move")
    journal.transfer(tmp_path / "red_0.jpg", tmp_path / "cats", "move")
    journal.close()
    lines = [json.loads(x) for x in journal.path.read_text().splitlines()]
    intent = next(x for x in lines if x.get("op") == "move")
    assert intent["src"] == "red_0.jpg" and intent["dst"] == "cats/red_0.jpg" and intent["ino"] > 0


def _full_after(monkeypatch, calls: int) -> None:
    """The journal's ``os.write`` fails after ``calls`` writes: the next one half-written, then ENOSPC, as on a full disk."""
    real_write, count = os.write, [0]

    def write(fd, data):
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(".jsonl"):
            return real_write(fd, data)
        count[0] += 1
        if count[0] <= calls:
            return real_write(fd, data)
        if count[0] == calls + 1:
            return real_write(fd, bytes(data)[: len(data) // 2])  # a short write; the rest fails below
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to tell the journal's writes")
def test_a_journal_write_that_fails_stops_the_run_and_leaves_whole_lines(tmp_path: Path, monkeypatch) -> None:
    """Without root (no tmpfs to fill): the journal's writes fail, the first one half-written, as on a full disk."""
    from catsort.fileops import RunStopped

    before = make_album(tmp_path, cats=4, dogs=0, others=0)
    journal = Journal.start(tmp_path, "move")
    _full_after(monkeypatch, 4)  # mkdir line, then intent/done pairs: fails inside the second file's lines
    moved = []
    with pytest.raises(RunStopped, match="cannot write to the undo journal: the disk is full"):
        for i in range(4):
            moved.append(journal.transfer(tmp_path / f"red_{i}.jpg", tmp_path / "cats", "move"))
    with pytest.raises(RunStopped):  # and nothing more is done under it
        journal.transfer(tmp_path / "red_3.jpg", tmp_path / "cats", "move")
    assert journal.abort() is False  # cannot mark it ended either: left for the next run
    monkeypatch.undo()
    assert journal.path.read_bytes().endswith(b"\n"), "cut back to its last whole line"
    states, warnings = read_journals(tmp_path)
    assert warnings == [] and not states[0].ended
    assert sorted(tree_hashes(tmp_path).values()) == sorted(before.values())
    assert settle_interrupted(tmp_path) == (1, [])
    assert undo_runs(tmp_path).problems == [] and tree_hashes(tmp_path) == before


def test_a_copy_that_fills_the_disk_leaves_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    from catsort.fileops import RunStopped

    before = make_album(tmp_path, cats=2, dogs=0, others=0)
    journal = Journal.start(tmp_path, "copy")
    journal.transfer(tmp_path / "red_0.jpg", tmp_path / "cats", "copy")
    real_open = Path.open

    def open_(self, mode="r", *args, **kwargs):
        f = real_open(self, mode, *args, **kwargs)
        if mode == "xb":  # the temporary copy: its first write fills the disk
            def write(_data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            f.write = write
        return f

    monkeypatch.setattr(Path, "open", open_)
    with pytest.raises(RunStopped, match=r"cats: cannot copy red_1.jpg there: the disk is full"):
        journal.transfer(tmp_path / "red_1.jpg", tmp_path / "cats", "copy")
    monkeypatch.undo()
    assert not list((tmp_path / "cats").glob(".catsort-*")), "no hidden partial copy left"
    assert journal.abort() is True
    assert sorted(p.name for p in (tmp_path / "cats").iterdir()) == ["red_0.jpg"]
    assert undo_runs(tmp_path).problems == [] and tree_hashes(tmp_path) == before


def test_a_folder_gone_before_its_lock_is_taken_says_so(tmp_path: Path) -> None:
    from catsort.errors import FolderVanished

    with pytest.raises(FolderVanished, match="the folder is gone"), folder_lock(tmp_path / "gone"):
        pass


@pytest.mark.parametrize("name", ["cats", "CATS", "Dogs"])
def test_a_sorted_folders_output_folder_is_known_whatever_its_case(tmp_path: Path, name: str) -> None:
    """exFAT sticks and macOS disks fold case: CATS/ there is the cats/ catsort writes."""
    from catsort.layout import output_folder_line

    (tmp_path / ".catsort").mkdir()
    line = output_folder_line(tmp_path / name)
    assert line is not None and line.startswith(f"{tmp_path / name} is catsort's {name.lower()}/ folder")


def test_photos_come_in_the_order_a_file_manager_shows_them(tmp_path: Path) -> None:
    """Case aside and numbers by value: the review once put IMG_10 before IMG_9, and every capital before "apple"."""
    from catsort.scan import scan

    for name in ("IMG_10.jpg", "img_9.jpg", "IMG_2.jpg", "Zoo.jpg", "apple.jpg", "IMG_1².jpg"):
        (tmp_path / name).write_bytes(b"not decoded by a scan")
    assert [p.name for p in scan(tmp_path)] == ["apple.jpg", "IMG_1².jpg", "IMG_2.jpg", "img_9.jpg", "IMG_10.jpg", "Zoo.jpg"]


def test_a_run_whose_every_move_failed_is_not_the_one_undo_takes_back(tmp_path: Path, colour_model: Path, capsys,
                                                                      monkeypatch) -> None:
    """Its journal keeps the moves it gave up on, and --undo once "undid" it (restored 0 files) instead of the run
    before, which then needed a second --undo."""
    from catsort.apply import last_undoable_run
    from catsort.cli import main

    pics = tmp_path / "pics"
    before = make_album(pics, cats=2, dogs=0, others=0)
    assert main(["--headless", str(pics), "--model", str(colour_model), "-q"]) == 0
    first = last_undoable_run(pics)
    photo(RED, seed=7).save(pics / "new.jpg", quality=90)

    def refused(self, src, dst, tmp, seq, op, st) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")  # a cats/ this user may not write in

    with monkeypatch.context() as m:
        m.setattr(fileops.Journal, "_carry_out", refused)
        assert main(["--headless", str(pics), "--model", str(colour_model), "-q"]) == 1
    assert len(read_journals(pics)[0]) == 2 and last_undoable_run(pics) == first
    assert main(["--undo", str(pics)]) == 0
    assert {k: v for k, v in tree_hashes(pics).items() if k != "new.jpg"} == before
    capsys.readouterr()


def test_undo_in_a_copy_of_the_sorted_folder_puts_the_photos_back(tmp_path: Path, colour_model: Path, capsys) -> None:
    """A backup restored, or the folder taken to another disk: every file has a new inode. Undo once called each
    photo "replaced by another file since the run", left them all in cats/ and dogs/, and marked the run undone.
    A photo edited since (another modification time) is still left alone."""
    import shutil

    from catsort.cli import main

    pics, copy = tmp_path / "pics", tmp_path / "restored"
    before = make_album(pics)
    assert main(["--headless", str(pics), "--model", str(colour_model), "-q"]) == 0
    shutil.copytree(pics, copy, symlinks=True)  # times kept, as cp -a, rsync -a and backups keep them
    edited = copy / "cats" / "red_0.jpg"
    os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 10**10))
    assert main(["--undo", str(copy)]) == 1, "1: one photo could not be put back"
    out = capsys.readouterr()
    assert "cats/red_0.jpg: replaced by another file since the run; left alone" in out.out + out.err
    assert tree_hashes(copy) == {("cats/red_0.jpg" if k == "red_0.jpg" else k): v for k, v in before.items()}


def test_undo_leaves_alone_a_file_that_took_the_name_a_move_gave_up(tmp_path: Path, colour_model: Path, capsys,
                                                                   monkeypatch) -> None:
    """Another program put a file of the same size and time at cats/red_0.jpg just before the move: the move gave
    that name up for red_0 (1).jpg. Undo must bring the photo back and leave the other file where it is; the
    size-and-time rule for copied folders once took it for the run's own."""
    from catsort.cli import main

    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    photo_bytes = (pics / "red_0.jpg").read_bytes()
    stranger = photo_bytes[:-3] + bytes(3 * [0x55])  # the same size, other bytes
    real = fileops.Journal._carry_out

    def racing(self, src, dst, tmp, seq, op, st) -> None:
        if dst.name == "red_0.jpg":
            dst.write_bytes(stranger)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            raise FileExistsError(errno.EEXIST, "File exists")
        real(self, src, dst, tmp, seq, op, st)

    with monkeypatch.context() as m:
        m.setattr(fileops.Journal, "_carry_out", racing)
        assert main(["--headless", str(pics), "--model", str(colour_model), "-q"]) == 0
    assert (pics / "cats" / "red_0 (1).jpg").read_bytes() == photo_bytes
    assert main(["--undo", str(pics)]) == 0
    capsys.readouterr()
    assert (pics / "red_0.jpg").read_bytes() == photo_bytes and (pics / "cats" / "red_0.jpg").read_bytes() == stranger
