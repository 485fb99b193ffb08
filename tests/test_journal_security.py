"""A folder someone else prepared cannot make catsort delete, move or pull in files outside it.

Each test builds a crafted folder for real (journals, links), runs the real CLI on it, and checks
that nothing outside the folder changed (every path, inode and byte), that no traceback escaped,
that the report is one line, and that honest journals still settle and undo as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import in_threads, make_album, tree_hashes

from catsort import signing
from catsort.cli import main
from catsort.fileops import Journal
from catsort.layout import temporary_name


def _listing(folder: Path) -> dict[str, tuple[int, str]]:
    """Every entry below ``folder`` (hidden ones too): inode and content hash (or link target)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = os.lstat(p)
        if p.is_symlink():
            what = "-> " + os.readlink(p)
        elif p.is_file():
            what = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            what = "dir"
        out[str(p.relative_to(folder))] = (st.st_ino, what)
    return out


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """Files outside the sorted folder that a crafted journal will aim at."""
    v = tmp_path / "victim"
    (v / "empty").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "c.txt"):
        (v / name).write_text(f"precious {name}\n")
    return v


def _write_journal(folder: Path, name: str, records: list[dict], sign: bool = True) -> Path:
    """A journal as this user's catsort would sign it, or unsigned, with whatever records it is given."""
    runs = folder / ".catsort" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / name
    key, previous, lines = signing.journal_key(), path.name, []
    for rec in records:
        if sign:
            previous = signing.sign(key, previous, rec)
            rec = {**rec, "mac": previous}
        lines.append(json.dumps(rec) + "\n")
    path.write_text("".join(lines))
    return path


HEADER = {"catsort_journal": 2, "started": "2026-12-01T00:00:00+0000", "mode": "move"}


def _move(seq: int, src: str, dst: str, tmp: str, st: os.stat_result | None = None) -> dict:
    return {"seq": seq, "op": "move", "src": src, "dst": dst, "size": st.st_size if st else 1,
            "ino": st.st_ino if st else 1, "dev": st.st_dev if st else 1, "tmp": tmp}


def _run(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


def _the_five_attacks(pics: Path, victim: Path) -> None:
    """The crafted folder of the issue: four journals aimed outside and a ``cats/`` linking out."""
    b = os.lstat(victim / "a.txt")
    _write_journal(pics, "20260101-000000-000000001-1.jsonl", [HEADER, _move(1, "x.jpg", "cats/x.jpg", "../victim/b.txt")])
    _write_journal(pics, "20260101-000000-000000002-1.jsonl", [HEADER, _move(1, "../victim/a.txt", "../victim/a.txt", "cats/.t", b)])
    (pics / "stolen.txt").write_text("x")
    _write_journal(pics, "20260101-000000-000000003-1.jsonl",
                   [HEADER, _move(1, "stolen.txt", str(victim / "c.txt"), "cats/.t", os.lstat(victim / "c.txt")), {"end": "x"}])
    _write_journal(pics, "20260101-000000-000000004-1.jsonl",
                   [HEADER, {"seq": 0, "op": "mkdir", "src": "", "dst": "../victim/empty"}, {"end": "x"}])


@pytest.mark.parametrize("signed", [True, False], ids=["signed-by-this-user", "unsigned"])
def test_crafted_journals_are_reported_and_never_acted_on(tmp_path: Path, victim: Path, colour_model: Path, capsys, signed: bool) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=2, dogs=1, others=1)
    _the_five_attacks(pics, victim)
    if not signed:  # the same journals as a stranger would write them
        for j in (pics / ".catsort" / "runs").glob("*.jsonl"):
            lines = [json.loads(x) for x in j.read_text().splitlines()]
            j.write_text("".join(json.dumps({k: v for k, v in rec.items() if k != "mac"}) + "\n" for rec in lines))
    before_outside, journals_before = _listing(victim), sorted((pics / ".catsort" / "runs").iterdir())
    code, text = _run(["--headless", str(pics), "--model", str(colour_model), "--trust-journals"], capsys)
    assert code == 0
    assert _listing(victim) == before_outside
    assert text.count("it names a file outside the folder") + text.count("creates a folder other than") == 4
    assert all(len(line) < 400 for line in text.splitlines())
    assert sorted(p.name for p in (pics / "cats").iterdir()) == ["red_0.jpg", "red_1.jpg"], "the honest sort still happens"
    code, text = _run(["--undo", str(pics), "--all", "--trust-journals"], capsys)
    assert _listing(victim) == before_outside
    assert not (pics / "cats").exists() and (pics / "stolen.txt").exists()
    assert set(journals_before) <= set((pics / ".catsort" / "runs").iterdir()), "untrusted journals are never deleted"


def test_unsigned_journal_is_ignored_until_the_user_vouches_for_it(tmp_path: Path, colour_model: Path, capsys) -> None:
    """A journal of this folder's real run, but unsigned (another computer): named in one line, acted on only with --trust-journals."""
    pics = tmp_path / "pics"
    before = make_album(pics, cats=1, dogs=0, others=0)
    assert _run(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == 0
    journal = next((pics / ".catsort" / "runs").glob("*.jsonl"))
    stripped = [{k: v for k, v in json.loads(x).items() if k != "mac"} for x in journal.read_text().splitlines()]
    journal.write_text("".join(json.dumps(r) + "\n" for r in stripped))
    code, text = _run(["--undo", str(pics)], capsys)
    assert "is not signed" in text and "--trust-journals" in text and "nothing to undo" in text
    assert (pics / "cats" / "red_0.jpg").exists()
    code, text = _run(["--undo", str(pics), "--trust-journals"], capsys)
    assert code == 0 and tree_hashes(pics) == before
    assert "mac" in journal.read_text(), "a journal the user vouched for is signed anew"


def test_a_changed_line_breaks_the_signature(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    assert _run(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == 0
    journal = next((pics / ".catsort" / "runs").glob("*.jsonl"))
    journal.write_text(journal.read_text().replace('"src": "red_0.jpg"', '"src": "red_9.jpg"'))
    code, text = _run(["--undo", str(pics)], capsys)
    assert "was changed after catsort wrote it" in text and (pics / "cats" / "red_0.jpg").exists()


@pytest.mark.parametrize("path", ["/etc/passwd", "sub/../../victim/a.txt", "./x.jpg", "cats//x.jpg", "a\x00b"])
def test_bad_paths_anywhere_make_the_journal_untrusted(tmp_path: Path, victim: Path, capsys, path: str) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    before = _listing(victim), tree_hashes(pics)
    jid = "20260101-000000-000000001-1"
    _write_journal(pics, jid + ".jsonl", [HEADER, _move(1, path, "cats/x.jpg", "cats/" + temporary_name(jid, 1))])
    code, text = _run(["--undo", str(pics)], capsys)
    assert "ignoring" in text and (_listing(victim), tree_hashes(pics)) == before


def test_symlink_inside_a_journal_path_is_refused(tmp_path: Path, victim: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    os.symlink(victim, pics / "sub")
    jid = "20260101-000000-000000001-1"
    st = os.lstat(victim / "a.txt")
    (pics / "cats").mkdir()
    os.link(victim / "a.txt", pics / "cats" / "a.txt")  # same inode, as a finished move would leave it
    before = _listing(victim)
    _write_journal(pics, jid + ".jsonl", [HEADER, _move(1, "sub/a.txt", "cats/a.txt", "cats/" + temporary_name(jid, 1), st), {"end": "x"}])
    code, text = _run(["--undo", str(pics)], capsys)
    assert "goes through a symbolic link" in text and _listing(victim) == before


@pytest.mark.parametrize("content", [b"not json at all\n{}\n", b"\x00\xff" * 1000 + b"\n", b"[1, 2]\n", b"[" * 200_000 + b"\n"],
                         ids=["text", "binary", "list", "deeply-nested"])
def test_garbage_journal_is_reported(tmp_path: Path, capsys, content: bytes) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    runs = pics / ".catsort" / "runs"
    runs.mkdir(parents=True)
    (runs / "x.jsonl").write_bytes(content)
    code, text = _run(["--undo", str(pics)], capsys)
    assert code == 0 and "ignoring" in text and "x.jsonl" in text and (runs / "x.jsonl").read_bytes() == content


def test_huge_journal_is_not_read(tmp_path: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    runs = pics / ".catsort" / "runs"
    runs.mkdir(parents=True)
    with (runs / "big.jsonl").open("wb") as f:
        f.truncate(300 << 20)  # sparse: 300 MB without using the disk
    code, text = _run(["--undo", str(pics)], capsys)
    assert "too large to be a catsort journal" in text


@pytest.mark.parametrize("place", ["cats", "dogs", ".catsort"])
def test_output_folder_that_is_a_link_is_refused_before_anything_moves(tmp_path: Path, colour_model: Path, capsys, place: str) -> None:
    pics, elsewhere = tmp_path / "pics", tmp_path / "elsewhere"
    before = make_album(pics, cats=1, dogs=1, others=1)
    elsewhere.mkdir()
    os.symlink(elsewhere, pics / place)
    code, text = _run(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == 2 and f"{pics / place} is a symbolic link to {elsewhere}" in text and "never writes through a link" in text
    assert list(elsewhere.iterdir()) == [] and tree_hashes(pics) == before


def test_honest_journal_after_a_crash_still_settles_and_undoes(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    before = make_album(pics, cats=1, dogs=0, others=0)
    journal = Journal.start(pics.resolve(), "move")
    (pics / "cats").mkdir()
    src, dst = pics.resolve() / "red_0.jpg", pics.resolve() / "cats" / "red_0.jpg"
    st = os.lstat(src)
    journal.write(_move(1, "red_0.jpg", "cats/red_0.jpg", "cats/" + temporary_name(journal.id, 1), st), sync=True)
    os.link(src, dst)
    journal._file.write('{"seq": 1, "do')  # torn by the crash
    journal._file.close()
    code, text = _run(["--undo", str(pics)], capsys)
    assert code == 0 and "ignoring" not in text and tree_hashes(pics) == before


# --- found by review: each was a way in, or a traceback ---------------------------------------


def _unsigned(folder: Path, name: str, records: list[dict]) -> Path:
    return _write_journal(folder, name, records, sign=False)


def test_vouching_for_a_journal_never_writes_through_a_planted_link(tmp_path: Path, victim: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    assert _run(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == 0
    journal = next((pics / ".catsort" / "runs").glob("*.jsonl"))
    journal.write_text("".join(json.dumps({k: v for k, v in json.loads(x).items() if k != "mac"}) + "\n"
                               for x in journal.read_text().splitlines()))
    os.symlink(victim / "a.txt", journal.with_name(journal.name + ".resign"))
    before = _listing(victim)
    _run(["--undo", str(pics), "--trust-journals"], capsys)
    assert _listing(victim) == before and not journal.is_symlink()


def test_a_hard_linked_or_headless_file_is_never_written(tmp_path: Path, victim: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    runs = pics / ".catsort" / "runs"
    runs.mkdir(parents=True)
    (victim / "notes.txt").write_text("no newline at the end")
    os.link(victim / "notes.txt", runs / "x.jsonl")
    (runs / "torn.jsonl").write_text('{"catsort_jour')
    (runs / "empty.jsonl").write_text("")
    before, torn = _listing(victim), (runs / "torn.jsonl").read_bytes()
    code, text = _run(["--undo", str(pics)], capsys)
    assert code == 0 and _listing(victim) == before and (runs / "torn.jsonl").read_bytes() == torn
    assert "hard links" in text and "no complete line" in text and "empty.jsonl" not in text


def test_a_journal_whose_name_is_not_utf8_is_one_line(tmp_path: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    _write_journal(pics, os.fsdecode(b"\xff.jsonl"), [{**HEADER, "mac": "00"}], sign=False)  # checking it signs the odd name
    code, text = _run(["--undo", str(pics)], capsys)
    assert code == 0 and text.count("ignoring") == 1


def test_a_fifo_for_a_lock_is_refused_not_waited_on(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    (pics / ".catsort").mkdir()
    os.mkfifo(pics / ".catsort" / "lock")
    code, text = _run(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == 2 and ".catsort/lock" in text  # ENXIO (a FIFO nobody reads) or "not a regular file": never a hang


def test_a_photo_whose_name_is_not_utf8_is_sorted_and_undone(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    odd = pics / os.fsdecode(b"\xffcat.jpg")
    (pics / "red_0.jpg").rename(odd)
    before = tree_hashes(pics)
    code, _ = _run(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == 0 and (pics / "cats" / odd.name).exists()
    assert _run(["--undo", str(pics)], capsys)[0] == 0 and tree_hashes(pics) == before


def test_a_reused_inode_is_not_taken_for_the_moved_photo(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    assert _run(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == 0
    moved = pics / "cats" / "red_0.jpg"
    moved.unlink()
    moved.write_bytes(b"someone else's file, maybe on the same inode")
    code, text = _run(["--undo", str(pics)], capsys)
    assert moved.exists() and not (pics / "red_0.jpg").exists() and "replaced by another file" in text


def test_undo_goes_on_to_the_run_before_when_one_file_can_never_come_back(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    assert _run(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == 0
    photo_b = pics / "red_9.jpg"
    (pics / "cats" / "red_0.jpg").rename(tmp_path / "keep.jpg")  # run A's photo, kept aside
    shutil_copy = (tmp_path / "keep.jpg").read_bytes()
    photo_b.write_bytes(shutil_copy)
    assert _run(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == 0  # run B moves red_9
    (pics / "cats" / "red_9.jpg").unlink()
    (pics / "cats" / "red_9.jpg").write_bytes(b"replaced")
    (tmp_path / "keep.jpg").rename(pics / "cats" / "red_0.jpg")
    _run(["--undo", str(pics)], capsys)  # run B: its file was replaced, nothing to bring back
    _run(["--undo", str(pics)], capsys)  # so this one undoes run A
    assert (pics / "red_0.jpg").exists()


def test_a_differently_cased_output_folder_is_not_a_source(tmp_path: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    jid = "20260101-000000-000000001-1"
    _write_journal(pics, jid + ".jsonl", [HEADER, _move(1, "CATS/x.jpg", "cats/x.jpg", "cats/" + temporary_name(jid, 1)), {"end": "x"}])
    code, text = _run(["--undo", str(pics)], capsys)
    assert "is not a photo catsort sorts" in text


def test_a_dry_run_refuses_a_linked_output_folder_as_the_real_run_does(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics, elsewhere = tmp_path / "pics", tmp_path / "elsewhere"
    make_album(pics, cats=1, dogs=0, others=0)
    elsewhere.mkdir()
    os.symlink(elsewhere, pics / "cats")
    code, text = _run(["--headless", str(pics), "--model", str(colour_model), "--dry-run"], capsys)
    assert code == 2 and "is a symbolic link to" in text


def test_catsorts_starting_together_make_one_key_and_never_find_it_half_written(tmp_path: Path) -> None:
    """The key was once created empty and then filled: a second catsort starting at that moment read it as
    "the journal key is damaged" (13 times in 160 starts of 8 at once) and exited."""
    import threading

    for n in range(20):
        path = tmp_path / f"config{n}" / signing.KEY_FILE
        start, keys, errors = threading.Barrier(8), [], []

        def make(path: Path = path, start: threading.Barrier = start, keys: list = keys, errors: list = errors) -> None:
            start.wait()
            try:
                keys.append(signing._read_or_create_key(path))
            except Exception as exc:  # noqa: BLE001 (the test reports whatever it was)
                errors.append(exc)

        in_threads(make, 8)
        assert errors == [] and len(set(keys)) == 1 and keys[0] == path.read_bytes() and len(keys[0]) == 32
        assert [p.name for p in path.parent.iterdir()] == [signing.KEY_FILE], "no temporary file is left"
        assert path.stat().st_mode & 0o777 == 0o600


def test_a_key_folder_without_hard_links_still_gets_a_whole_key(tmp_path: Path, monkeypatch) -> None:
    def no_links(src, dst) -> None:
        raise PermissionError(1, "Operation not permitted")  # what exFAT says

    monkeypatch.setattr(signing.os, "link", no_links)
    key = signing._read_or_create_key(tmp_path / signing.KEY_FILE)
    assert len(key) == 32 and signing._read_or_create_key(tmp_path / signing.KEY_FILE) == key
    assert [p.name for p in tmp_path.iterdir()] == [signing.KEY_FILE]
