"""The command line end to end: real files, a real ONNX model, real moves, reports and exit codes."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import RED, make_album, photo, shared, tree_hashes

from catsort.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_sorts_then_undoes_exactly(tmp_path: Path, colour_model: Path, capsys) -> None:
    before = make_album(tmp_path / "pics")
    code, out, _ = run(["--headless", str(tmp_path / "pics"), "--model", str(colour_model)], capsys)
    assert code == 0
    after = tree_hashes(tmp_path / "pics")
    assert sorted(after) == sorted(
        [f"cats/red_{i}.jpg" for i in range(3)] + [f"dogs/blue_{i}.jpg" for i in range(3)] + [f"green_{i}.jpg" for i in range(3)]
    )
    assert sorted(after.values()) == sorted(before.values())
    assert "3 moved to cats/, 3 moved to dogs/, 3 kept in place, 0 failed" in out
    assert run(["--undo", str(tmp_path / "pics")], capsys)[0] == 0
    assert tree_hashes(tmp_path / "pics") == before
    assert not (tmp_path / "pics" / "cats").exists()
    code, _, err = run(["--undo", str(tmp_path / "pics")], capsys)
    assert code == 0 and "nothing to undo" in err
    assert tree_hashes(tmp_path / "pics") == before


def test_never_overwrites_and_never_resorts_its_output(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=2, dogs=0, others=0)
    (pics / "cats").mkdir()
    photo(RED, seed=99).save(pics / "cats" / "red_0.jpg")
    existing = (pics / "cats" / "red_0.jpg").read_bytes()
    assert run(["--headless", str(pics), "--model", str(colour_model), "-r"], capsys)[0] == 0
    assert (pics / "cats" / "red_0.jpg").read_bytes() == existing
    assert sorted(p.name for p in (pics / "cats").iterdir()) == ["red_0 (1).jpg", "red_0.jpg", "red_1.jpg"]
    assert not (pics / "cats" / "cats").exists()


def test_dry_run_changes_nothing_and_reports(tmp_path: Path, colour_model: Path, capsys) -> None:
    before = make_album(tmp_path / "pics")
    (tmp_path / "pics" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    report = tmp_path / "report.json"
    code, out, err = run(
        ["--headless", str(tmp_path / "pics"), "--model", str(colour_model), "--dry-run", "--report", str(report), "--json"], capsys
    )
    assert code == 1
    assert tree_hashes(tmp_path / "pics") == before | {"broken.jpg": tree_hashes(tmp_path / "pics")["broken.jpg"]}
    assert not (tmp_path / "pics" / ".catsort").exists()
    summary = json.loads(out)
    assert (summary["moved"], summary["would_move"], summary["kept"], summary["failed"]) == (0, 6, 3, 1)
    assert summary["would_refuse"] is None  # a writable folder (tests/test_faults.py has the read-only one)
    assert summary["failures"][0]["path"].endswith("broken.jpg")
    assert "would be moved" in err
    rows = json.loads(report.read_text())
    assert set(rows[0]) == {"path", "prediction", "confidence", "action", "destination", "error"}
    broken = next(r for r in rows if r["path"].endswith("broken.jpg"))
    assert broken["prediction"] is None and broken["action"] == "error" and broken["destination"] is None and broken["error"]
    red = next(r for r in rows if r["path"].endswith("red_0.jpg"))
    assert red["prediction"] == "cat" and red["action"] == "move" and red["destination"].endswith("cats/red_0.jpg")


def test_copy_mode_csv_report_and_undo(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    before = make_album(pics, cats=2, dogs=1, others=1)
    code, _, _ = run(["--headless", str(pics), "--model", str(colour_model), "--copy", "--report", str(tmp_path / "r.csv")], capsys)
    assert code == 0
    after = tree_hashes(pics)
    assert set(before) < set(after) and after["cats/red_0.jpg"] == before["red_0.jpg"]
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert {r["action"] for r in rows} == {"copy", "stay"}
    assert run(["--undo", str(pics)], capsys)[0] == 0
    assert tree_hashes(pics) == before


def test_threshold_one_moves_nothing(tmp_path: Path, colour_model: Path, capsys) -> None:
    before = make_album(tmp_path / "pics", cats=2, dogs=2, others=0)
    assert run(["--headless", str(tmp_path / "pics"), "--model", str(colour_model), "--threshold", "1"], capsys)[0] == 0
    assert tree_hashes(tmp_path / "pics") == before


def test_recursive_skips_hidden_and_symlinks(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics / "2019" / "trip", cats=1, dogs=0, others=0)
    make_album(pics / ".hidden", cats=1, dogs=0, others=0)
    outside = tmp_path / "outside"
    make_album(outside, cats=1, dogs=0, others=0)
    os.symlink(outside, pics / "linked")
    os.symlink(outside / "red_0.jpg", pics / "link.jpg")
    assert run(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == 0
    assert not (pics / "cats").exists(), "without --recursive only top-level photos count"
    assert run(["--headless", str(pics), "--model", str(colour_model), "--recursive"], capsys)[0] == 0
    assert [p.name for p in (pics / "cats").iterdir()] == ["red_0.jpg"]
    assert (pics / ".hidden" / "red_0.jpg").exists() and (outside / "red_0.jpg").exists()
    assert (pics / "link.jpg").is_symlink()


def test_unreadable_folder_and_file_are_errors_not_crashes(tmp_path: Path, colour_model: Path, capsys) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    pics = tmp_path / "pics"
    make_album(pics / "locked", cats=1, dogs=0, others=0)
    make_album(pics, cats=1, dogs=0, others=0)
    os.chmod(pics / "locked", 0)
    try:
        code, out, _ = run(["--headless", str(pics), "--model", str(colour_model), "-r"], capsys)
    finally:
        os.chmod(pics / "locked", 0o755)
    assert code == 1 and "cannot read folder" in out


def test_unusable_inputs_exit_2(tmp_path: Path, colour_model: Path, capsys) -> None:
    code, _, err = run(["--headless", str(tmp_path / "nope"), "--model", str(colour_model)], capsys)
    assert code == 2 and "no such folder" in err
    (tmp_path / "file.jpg").write_bytes(b"x")
    assert run(["--headless", str(tmp_path / "file.jpg"), "--model", str(colour_model)], capsys)[0] == 2
    tampered = tmp_path / "m"
    tampered.mkdir()
    card = json.loads(colour_model.read_text())
    (tampered / "colour.onnx").write_bytes(colour_model.with_suffix(".onnx").read_bytes() + b"\0")
    (tampered / "colour.json").write_text(json.dumps(card))
    make_album(tmp_path / "pics", cats=1, dogs=0, others=0)
    for folder in (tmp_path, tmp_path / "pics"):  # the first file unreadable, or a photo: refused all the same
        code, _, err = run(["--headless", str(folder), "--model", str(tampered / "colour.onnx")], capsys)
        assert code == 2 and "does not match its card" in err
        assert not (folder / ".catsort").exists(), "the model loads in the background, but is refused before the journal"
    renamed = tmp_path / "r"
    renamed.mkdir()
    card["input"]["views"][0]["name"] = "photo"
    (renamed / "colour.onnx").write_bytes(colour_model.with_suffix(".onnx").read_bytes())
    (renamed / "colour.json").write_text(json.dumps(card))
    code, _, err = run(["--headless", str(tmp_path), "--model", str(renamed / "colour.json")], capsys)
    assert code == 2 and "inputs ['pixels'] are not the card's views ['photo']" in err
    del card["input"]["views"]
    (renamed / "colour.json").write_text(json.dumps(card))
    code, _, err = run(["--headless", str(tmp_path), "--model", str(renamed / "colour.json")], capsys)
    assert code == 2 and "not a valid model card for this catsort (no 'views' field)" in err
    with pytest.raises(SystemExit) as exc:
        main(["--headless", str(tmp_path), "--threshold", "1.5"])
    assert exc.value.code == 2


def test_shipped_model_loads_and_sorts_real_photos(tmp_path: Path, capsys) -> None:
    real = shared("real")
    pics = tmp_path / "pics"
    pics.mkdir()
    for label in ("cat", "dog", "other"):
        for p in sorted((real / label).glob("*.jpg"))[:4]:
            (pics / f"{label}-{p.name}").write_bytes(p.read_bytes())
    code, out, _ = run(["--headless", str(pics), "--json"], capsys)
    assert code == 0
    assert json.loads(out)["files"] == 12
    moved_wrong = [p for folder, label in (("cats", "cat"), ("dogs", "dog")) if (pics / folder).exists()
                   for p in (pics / folder).iterdir() if not p.name.startswith(label)]
    assert moved_wrong == []
    assert len(list((pics / "cats").glob("*"))) + len(list((pics / "dogs").glob("*"))) >= 6


def _stop_at(monkeypatch: pytest.MonkeyPatch, nth: int, fault: BaseException) -> None:
    """The ``nth`` file handled raises ``fault`` (as Ctrl-C or a disk that fills up would, mid-run)."""
    import catsort.apply

    real, calls = catsort.apply._carry_out, [0]

    def carry_out(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            raise fault
        return real(*args, **kwargs)

    monkeypatch.setattr(catsort.apply, "_carry_out", carry_out)


def test_json_summary_says_whether_the_run_stopped(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    pics = tmp_path / "pics"
    before = make_album(pics)
    code, out, _ = run(["--headless", str(pics), "--model", str(colour_model), "--json", "-q"], capsys)
    summary = json.loads(out)
    assert code == 0
    assert (summary["stopped"], summary["stop_reason"], summary["interrupted"], summary["unhandled"]) == (False, None, False, 0)
    assert run(["--undo", str(pics)], capsys)[0] == 0

    _stop_at(monkeypatch, 4, KeyboardInterrupt())
    code, out, err = run(["--headless", str(pics), "--model", str(colour_model), "--json"], capsys)
    summary = json.loads(out)  # a summary object even on Ctrl-C, of the files handled before it
    assert code == 130
    assert summary["stopped"] is True and summary["interrupted"] is True
    assert summary["files"] == 3 and summary["unhandled"] == 6 and summary["moved"] + summary["kept"] == 3
    assert "interrupted after 3 of 9 files" in summary["stop_reason"] and "catsort --undo" in summary["stop_reason"]
    assert f"catsort: {summary['stop_reason']}" in err and "Traceback" not in err
    assert run(["--undo", str(pics)], capsys)[0] == 0
    assert tree_hashes(pics) == before


def test_json_summary_of_a_run_a_full_disk_stopped(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    from catsort.fileops import RunStopped

    pics = tmp_path / "pics"
    before = make_album(pics)
    _stop_at(monkeypatch, 5, RunStopped(f"{pics / 'cats'}: the disk is full"))
    code, out, err = run(["--headless", str(pics), "--model", str(colour_model), "--json"], capsys)
    summary = json.loads(out)
    assert code == 3
    assert summary["stopped"] is True and summary["interrupted"] is False
    assert summary["files"] == 4 and summary["unhandled"] == 5
    assert "the disk is full" in summary["stop_reason"] and f"catsort: {summary['stop_reason']}" in err
    assert f"4 of 9 photos in {pics}:" in err, "the human summary says how many of the photos found were handled"
    assert run(["--undo", str(pics)], capsys)[0] == 0
    assert tree_hashes(pics) == before


def test_ctrl_c_in_a_dry_run_summarises_what_was_seen(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    import catsort.sort

    pics = tmp_path / "pics"
    before = make_album(pics)
    real, calls = catsort.sort.preview, [0]

    def preview(*args):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(catsort.sort, "preview", preview)
    code, out, err = run(["--headless", str(pics), "--model", str(colour_model), "--dry-run", "--json"], capsys)
    summary = json.loads(out)
    assert code == 130 and summary["stopped"] and summary["files"] == 1 and summary["unhandled"] == 8
    assert "nothing was changed (dry run)" in summary["stop_reason"]
    assert tree_hashes(pics) == before and not (pics / ".catsort").exists()


def test_sorting_a_sorted_folders_cats_is_refused_in_one_line(tmp_path: Path, colour_model: Path, capsys) -> None:
    """It would make cats/cats/; a folder of the user's own named dogs (no catsort journal beside it) is sorted."""
    pics = tmp_path / "pics"
    make_album(pics)
    assert run(["--headless", str(pics), "--model", str(colour_model), "-q"], capsys)[0] == 0
    inside = tree_hashes(pics / "cats")
    code, out, err = run(["--headless", str(pics / "cats"), "--model", str(colour_model)], capsys)
    assert code == 2 and err == (f"catsort: {pics / 'cats'} is catsort's cats/ folder, where the cat photos of {pics} go: "
                                 "sort that folder instead.\n")
    assert tree_hashes(pics / "cats") == inside
    make_album(tmp_path / "mine" / "dogs", cats=1, dogs=0, others=0)
    code, out, err = run(["--headless", str(tmp_path / "mine" / "dogs"), "--model", str(colour_model), "-q"], capsys)
    assert code == 0 and (tmp_path / "mine" / "dogs" / "cats" / "red_0.jpg").exists()
    # what the window asks first, the terminal says at the end: the run can be undone if it was the wrong folder
    assert err == (f"catsort: {tmp_path / 'mine' / 'dogs'} is named like catsort's dogs/ folder, where the dog photos of "
                   f"{tmp_path / 'mine'} would go: sort that folder instead, or this one if it is a folder of your own.\n")


def test_a_recursive_run_leaves_a_sorted_sub_folders_cats_and_dogs_alone(tmp_path: Path, colour_model: Path, capsys) -> None:
    """2019/ was sorted on its own: -r on its parent must not sweep 2019/cats into the parent's cats/, which
    would leave 2019's undo with photos missing."""
    pics = tmp_path / "pics"
    before = make_album(pics / "2019")
    assert run(["--headless", str(pics / "2019"), "--model", str(colour_model), "-q"], capsys)[0] == 0
    sorted_sub = tree_hashes(pics / "2019")
    code, out, err = run(["--headless", "-r", str(pics), "--model", str(colour_model)], capsys)
    assert code == 0 and "3 photos in" in out, out  # the three "other" photos 2019's run kept in place
    assert {k: v for k, v in tree_hashes(pics / "2019").items() if "/" in k} == {k: v for k, v in sorted_sub.items() if "/" in k}
    assert run(["--undo", str(pics)], capsys)[0] == 0
    assert run(["--undo", str(pics / "2019")], capsys)[0] == 0 and tree_hashes(pics / "2019") == before


@pytest.mark.parametrize("name", ["Cats", "DOGS", "cats."])
def test_a_recursive_run_leaves_a_cats_folder_in_another_case_alone(tmp_path: Path, colour_model: Path, capsys, name: str) -> None:
    """On a case-insensitive disk Cats/ is catsort's cats/, and the journal check folds the case as such a disk
    does: -r once swept Cats/ into cats/, and its undo then refused the journal ("not a photo catsort sorts")."""
    pics = tmp_path / "pics"
    make_album(pics, cats=2, dogs=1, others=1)
    shutil.copy(next(pics.glob("red_*.jpg")), pics / "kitty.jpg")
    (pics / name).mkdir()
    (pics / "kitty.jpg").rename(pics / name / "kitty.jpg")
    before = tree_hashes(pics)
    assert run(["--headless", "-r", str(pics), "--model", str(colour_model), "-q"], capsys)[0] == 0
    assert (pics / name / "kitty.jpg").exists() and (pics / "cats").is_dir()
    code, out, err = run(["--undo", str(pics)], capsys)
    assert code == 0 and "ignoring" not in out + err and tree_hashes(pics) == before


def test_quiet_and_verbose_together_are_refused(tmp_path: Path, colour_model: Path, capsys) -> None:
    before = make_album(tmp_path / "pics")
    with pytest.raises(SystemExit) as exc:
        main(["--headless", str(tmp_path / "pics"), "--model", str(colour_model), "-q", "-v"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert tree_hashes(tmp_path / "pics") == before


def test_undo_refuses_the_flags_it_would_ignore(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics)
    assert run(["--headless", str(pics), "--model", str(colour_model), "-q"], capsys)[0] == 0
    sorted_tree = tree_hashes(pics)
    for flags in (["--dry-run"], ["--json"], ["--report", str(tmp_path / "r.json")], ["--copy"]):
        with pytest.raises(SystemExit) as exc:
            main(["--undo", str(pics), *flags])
        assert exc.value.code == 2
        assert f"{flags[0]} does not go with --undo" in capsys.readouterr().err
        assert tree_hashes(pics) == sorted_tree, f"--undo {flags[0]} undid the run"
    assert not (tmp_path / "r.json").exists()


def test_an_empty_path_is_refused_not_taken_for_the_current_folder(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    before = make_album(tmp_path)
    monkeypatch.chdir(tmp_path)
    for args in (["--headless", "", "--model", str(colour_model)], ["--undo", ""], ["--headless", " "]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2 and "PATH is empty" in capsys.readouterr().err
    assert tree_hashes(tmp_path) == before and not (tmp_path / ".catsort").exists()


def test_a_bad_number_reads_as_one(capsys) -> None:
    for flag, what in (("--threshold", "a number"), ("--jobs", "a whole number")):
        with pytest.raises(SystemExit) as exc:
            main(["--headless", ".", flag, "abc"])
        assert exc.value.code == 2
        assert capsys.readouterr().err.strip().endswith(f"argument {flag}: 'abc' is not {what}")


def test_more_jobs_than_the_machine_can_use_are_refused(capsys) -> None:
    """--jobs 1000 once started 1000 workers: 1.35 GB of memory for 600 small photos (188 MB with 2)."""
    most = max(8, 4 * (os.cpu_count() or 1))
    with pytest.raises(SystemExit) as exc:
        main(["--headless", ".", "--jobs", str(most + 1)])
    assert exc.value.code == 2 and f"argument --jobs: {most + 1} is more than this machine can use: at most {most}" in capsys.readouterr().err


def test_a_report_that_cannot_be_written_is_refused_before_the_sort(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    before = make_album(pics)
    (tmp_path / "a folder.json").mkdir()
    for report, problem in ((tmp_path / "nowhere" / "r.json", "does not exist"), (tmp_path / "a folder.json", "that is a folder")):
        with pytest.raises(SystemExit) as exc:
            main(["--headless", str(pics), "--model", str(colour_model), "--report", str(report)])
        assert exc.value.code == 2 and problem in capsys.readouterr().err
        assert tree_hashes(pics) == before and not (pics / ".catsort").exists()


def test_a_report_lost_after_the_sort_still_says_what_was_done(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    import shutil

    import catsort.apply

    pics, reports = tmp_path / "pics", tmp_path / "reports"
    make_album(pics)
    reports.mkdir()
    real = catsort.apply._carry_out

    def carry_out(*args, **kwargs):  # the report's folder (a USB stick, say) goes away mid-run
        shutil.rmtree(reports, ignore_errors=True)
        return real(*args, **kwargs)

    monkeypatch.setattr(catsort.apply, "_carry_out", carry_out)
    code, out, err = run(["--headless", str(pics), "--model", str(colour_model), "--report", str(reports / "r.csv")], capsys)
    assert code == 1
    assert "3 moved to cats/, 3 moved to dogs/" in out and f"Undo with: catsort --undo {pics}" in out
    assert f"{reports / 'r.csv'}: cannot write the report" in err and "Traceback" not in err


def test_file_names_print_as_one_line_without_terminal_escapes(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "two\nlines.jpg").write_bytes(b"\xff\xd8 not a photo")
    (pics / "\x1b[31mred.jpg").write_bytes(b"\xff\xd8 not a photo")
    code, _, err = run(["--headless", str(pics), "--model", str(colour_model), "-q"], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("FAILED ") for line in lines)
    assert "\x1b" not in err and "\\x1b[31mred.jpg" in err and "two\\nlines.jpg" in err


def test_a_json_report_of_a_name_that_is_not_utf8_stays_valid_and_keeps_the_name(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 from an old camera or a Windows share
    (pics / "red_0.jpg").rename(pics / name)
    report = tmp_path / "r.json"
    assert run(["--headless", str(pics), "--model", str(colour_model), "--report", str(report), "-q"], capsys)[0] == 0
    rows = json.loads(report.read_bytes().decode("utf-8"))
    assert [os.fsencode(Path(r["path"]).name) for r in rows] == [b"caf\xe9.jpg"]
    assert (pics / "cats" / name).exists()


def test_undo_brings_photos_home_to_the_sub_folders_the_user_deleted(tmp_path: Path, colour_model: Path, capsys) -> None:
    import shutil

    pics = tmp_path / "pics"
    pics.mkdir()
    before = {f"sub/deep/{k}": v for k, v in make_album(pics / "sub" / "deep", others=0).items()}
    assert run(["--headless", str(pics), "--model", str(colour_model), "-r", "-q"], capsys)[0] == 0
    shutil.rmtree(pics / "sub")  # emptied by the sort, so tidied away
    code, _, err = run(["--undo", str(pics)], capsys)
    assert code == 0 and "problem" not in err
    assert tree_hashes(pics) == before


def test_ctrl_c_after_photos_were_looked_at_but_none_moved_points_at_no_undo(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    """Only photos that stay were handled: the previous run is what ``--undo`` would take back, so it is not offered."""
    before = make_album(tmp_path / "pics", cats=0, dogs=0, others=4)
    _stop_at(monkeypatch, 3, KeyboardInterrupt())
    code, out, err = run(["--headless", str(tmp_path / "pics"), "--model", str(colour_model)], capsys)
    assert code == 130
    assert f"catsort: interrupted after 2 of 4 files; no photo was moved or copied, nothing was changed in {tmp_path / 'pics'}" in err
    assert "--undo" not in out + err and tree_hashes(tmp_path / "pics") == before


def test_ctrl_c_while_the_app_loads_says_nothing_was_changed_not_undo(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    """Before sort_folder (the card loading, the imports): --undo would take back the previous run."""
    import catsort.model

    pics = tmp_path / "pics"
    make_album(pics)
    assert run(["--headless", str(pics), "--model", str(colour_model), "-q"], capsys)[0] == 0
    sorted_tree = tree_hashes(pics)

    def load(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(catsort.model.ModelCard, "load", load)
    code, out, err = run(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == 130 and err == f"catsort: interrupted before any file was moved; nothing was changed in {pics.resolve()}\n"
    assert tree_hashes(pics) == sorted_tree


def test_a_photo_moved_an_instant_before_the_interrupt_is_offered_to_undo(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    """The interrupt lands after the first move, before its record: no record says so, but its journal does."""
    from catsort.fileops import Journal

    before = make_album(tmp_path / "pics", cats=2, dogs=0, others=0)
    real_note = Journal._note

    def note_then_interrupt(self, record: dict) -> None:
        real_note(self, record)
        if record.get("done"):
            raise KeyboardInterrupt

    monkeypatch.setattr(Journal, "_note", note_then_interrupt)
    code, out, err = run(["--headless", str(tmp_path / "pics"), "--model", str(colour_model)], capsys)
    assert code == 130 and (tmp_path / "pics" / "cats").exists()
    assert "interrupted after 0 of 2 files; every file is at its old or its new place. Undo what was done with: catsort --undo" in err
    monkeypatch.undo()
    assert run(["--undo", str(tmp_path / "pics")], capsys)[0] == 0 and tree_hashes(tmp_path / "pics") == before


def test_a_run_stopped_after_making_cats_but_before_moving_leaves_no_trace(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    """The empty cats/ it made goes again with its journal: it changed nothing, and --undo still means the run before."""
    from catsort.fileops import Journal

    pics = tmp_path / "pics"
    make_album(pics, cats=0, dogs=2, others=0)
    assert run(["--headless", str(pics), "--model", str(colour_model), "-q"], capsys)[0] == 0
    sorted_tree = tree_hashes(pics)
    make_album(tmp_path / "more", cats=1, dogs=0, others=0)
    (tmp_path / "more" / "red_0.jpg").rename(pics / "red_0.jpg")
    real_write = Journal.write

    def write_but_not_the_move(self, record: dict, sync: bool) -> None:
        if record.get("op") == "move":
            raise KeyboardInterrupt
        real_write(self, record, sync)

    monkeypatch.setattr(Journal, "write", write_but_not_the_move)
    code, out, err = run(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == 130 and "no photo was moved or copied, nothing was changed" in err
    assert not (pics / "cats").exists() and len(list((pics / ".catsort" / "runs").iterdir())) == 1
    monkeypatch.undo()
    assert run(["--undo", str(pics)], capsys)[0] == 0
    assert tree_hashes(pics) == {**{k.removeprefix("dogs/"): v for k, v in sorted_tree.items()}, "red_0.jpg": tree_hashes(pics)["red_0.jpg"]}


def test_a_second_ctrl_c_while_the_first_is_reported_ends_it_with_that_line(tmp_path: Path, colour_model: Path, capsys,
                                                                            monkeypatch) -> None:
    """In the process the handler is only looked at (it ends the process); the next test sends the signal."""
    import signal

    import catsort.cli

    make_album(tmp_path / "pics")
    _stop_at(monkeypatch, 2, KeyboardInterrupt())
    seen = []
    real = catsort.cli._print_summary

    def print_summary(*args):  # observes the handler in force while the report prints; changes nothing
        seen.append(signal.getsignal(signal.SIGINT))
        real(*args)

    monkeypatch.setattr(catsort.cli, "_print_summary", print_summary)
    before = signal.getsignal(signal.SIGINT)
    code, _, err = run(["--headless", str(tmp_path / "pics"), "--model", str(colour_model)], capsys)
    assert code == 130 and "interrupted after 1 of 9 files" in err
    assert len(seen) == 1 and callable(seen[0]) and seen[0] not in (before, signal.default_int_handler)
    assert signal.getsignal(signal.SIGINT) is before, "a caller's own Ctrl-C handler is given back"


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux's /proc to see the report's write wait")
def test_a_stop_while_it_reports_ends_it_at_once(tmp_path: Path, colour_model: Path, capsys) -> None:
    """A report to a pipe nobody reads (or a hung share) blocks for good. The stop signals were once ignored once
    the sort had ended, so that only kill -9 could end it."""
    import signal
    import subprocess
    import sys
    import time

    before = make_album(tmp_path / "pics")
    report = tmp_path / "report.csv"
    os.mkfifo(report)
    proc = subprocess.Popen([sys.executable, "-m", "catsort", "--headless", str(tmp_path / "pics"), "--model", str(colour_model),
                             "--report", str(report)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))  # as a terminal starts it
    try:
        for _ in range(600):  # until it waits for a reader of the report
            if Path(f"/proc/{proc.pid}/wchan").read_text() == "wait_for_partner" or proc.poll() is not None:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == ("catsort: interrupted while it reported; the sort had ended, every file is at its old or "
                                            f"its new place. Undo it with: catsort --undo {tmp_path / 'pics'}")
    assert (tmp_path / "pics" / "cats").is_dir()
    assert run(["--undo", str(tmp_path / "pics")], capsys)[0] == 0 and tree_hashes(tmp_path / "pics") == before


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path, colour_model: Path) -> None:
    import subprocess
    import sys

    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(1500):  # enough failures that the JSON outgrows the pipe's buffer
        (pics / f"an_empty_file_with_a_long_name_{i:04}.jpg").touch()
    proc = subprocess.Popen([sys.executable, "-m", "catsort", "--headless", str(pics), "--model", str(colour_model), "--json", "-n"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(10) == b'{\n  "folde'
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1, "the run's own exit code: its files failed"
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert "1500 photos" in err and "1500 failed" in err, "the summary on stderr is not lost with stdout"


def test_a_model_that_fails_part_way_stops_the_run_like_a_full_disk(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    from catsort.errors import ModelError
    from catsort.model import Classifier

    pics = tmp_path / "pics"
    before = make_album(pics, cats=12, dogs=12, others=0)
    real, calls = Classifier.logits, [0]

    def logits(self, inputs):  # onnxruntime failing on the second batch (out of memory, say)
        calls[0] += 1
        if calls[0] == 2:
            raise ModelError("colour.onnx: onnxruntime failed running it: out of memory")
        return real(self, inputs)

    monkeypatch.setattr(Classifier, "logits", logits)
    code, _, err = run(["--headless", str(pics), "--model", str(colour_model), "--jobs", "1"], capsys)
    assert code == 3
    line = next(x for x in err.splitlines() if x.startswith("catsort: colour.onnx"))
    assert "stopped after 8 of 24 files" in line and f"catsort --undo {pics}" in line
    monkeypatch.undo()
    assert run(["--undo", str(pics)], capsys)[0] == 0 and tree_hashes(pics) == before


def test_main_runs_from_a_thread_other_than_the_main_one(tmp_path: Path, colour_model: Path, capsys) -> None:
    """The window or a test may call it from a worker: Python lets only the main thread set signal handlers."""
    import threading

    make_album(tmp_path / "pics")
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(main(["--headless", str(tmp_path / "pics"), "--model", str(colour_model), "-q"])))
    worker.start()
    worker.join(120)
    assert result == [0]


def test_printable_escapes_what_could_fake_or_hide_a_file_name() -> None:
    from catsort.cli import printable

    assert printable("a\\nb.jpg") == "a\\\\nb.jpg", "a real backslash-n is not shown as a newline's escape"
    assert printable("a\nb.jpg") == "a\\nb.jpg"
    assert printable("cat_\u202egpj.exe") == "cat_\\u202egpj.exe", "a right-to-left override is shown, not obeyed"
    assert printable("chat_noir_\u00e9t\u00e9.jpg") == "chat_noir_\u00e9t\u00e9.jpg", "ordinary letters stay"


def test_ctrl_c_before_the_first_move_does_not_point_at_an_earlier_run(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    import catsort.sort

    pics = tmp_path / "pics"
    make_album(pics)
    assert run(["--headless", str(pics), "--model", str(colour_model), "-q"], capsys)[0] == 0
    for i in range(3):  # new photos since that run, sorted by a second one that is interrupted while it scans
        photo(RED, seed=10 + i).save(pics / f"new{i}.jpg")
    sorted_tree = tree_hashes(pics)

    def scan_folder(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(catsort.sort, "scan_folder", scan_folder)
    code, _, err = run(["--headless", str(pics), "--model", str(colour_model)], capsys)
    assert code == 130
    assert f"catsort: interrupted before any file was moved; nothing was changed in {pics}" in err
    assert "--undo" not in err, "undo would take back the earlier run, which the user wanted"
    assert "Traceback" not in err and tree_hashes(pics) == sorted_tree


@pytest.mark.parametrize("redirect", [">/dev/full", ">&-"], ids=["stdout-full", "stdout-closed"])
def test_a_stdout_that_cannot_be_written_gets_one_line_not_a_traceback(tmp_path: Path, colour_model: Path, redirect: str) -> None:
    import shlex
    import subprocess
    import sys

    pics = tmp_path / "pics"
    make_album(pics)
    command = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "catsort", "--headless", str(pics), "--model", str(colour_model)))
    done = subprocess.run(["bash", "-c", f"{command} {redirect}"], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and "Error" not in done.stderr
    if redirect == ">/dev/full":
        assert done.returncode == 1
        assert done.stderr.strip() == "catsort: cannot write the summary to standard output: No space left on device"
    else:
        assert done.returncode == 0 and done.stderr == ""
    assert len(list((pics / "cats").iterdir())) == 3, "the sort itself is done either way"


def test_ctrl_c_part_way_through_an_undo_says_how_many_came_back(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    """The count of an interrupted undo, as a full disk's stop gives it; the next --undo brings back the rest."""
    import catsort.fileops

    pics = tmp_path / "pics"
    before = make_album(pics, cats=3, dogs=2, others=1)
    assert run(["--headless", str(pics), "--model", str(colour_model)], capsys)[0] == 0
    real, calls = catsort.fileops._restore, [0]

    def restore(src: Path, dst: Path, tmp_name: str) -> Path:
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return real(src, dst, tmp_name)

    monkeypatch.setattr(catsort.fileops, "_restore", restore)
    code, _, err = run(["--undo", str(pics)], capsys)
    assert code == 130
    assert err.splitlines() == [
        "Stopped undoing 1 run(s): restored 2 files.",
        f"catsort: interrupted; every file is at its old or its new place: catsort --undo {pics} again finishes putting them back",
    ]
    monkeypatch.setattr(catsort.fileops, "_restore", real)
    code, _, err = run(["--undo", str(pics)], capsys)
    assert (code, err) == (0, "Undid 1 run(s): restored 3 files.\n")
    assert tree_hashes(pics) == before


def test_a_dry_run_while_another_run_sorts_the_folder_is_refused_as_a_real_run_is(tmp_path: Path, colour_model: Path, capsys) -> None:
    """Taking no lock (it must work on a read-only folder), it would report every photo the other run moves as vanished."""
    from catsort.fileops import folder_lock

    pics = tmp_path / "pics"
    before = make_album(pics, cats=2, dogs=1, others=1)
    with folder_lock(pics.resolve()):  # another catsort, mid-run
        for flags in ([], ["--dry-run"]):
            code, out, err = run(["--headless", str(pics), "--model", str(colour_model), *flags], capsys)
            assert (code, out, err) == (2, "", f"catsort: {pics.resolve()}: another catsort is working on this folder\n")
    code, out, _ = run(["--headless", str(pics), "--model", str(colour_model), "--dry-run"], capsys)
    assert code == 0 and "2 would be moved to cats/" in out
    assert tree_hashes(pics) == before and not (pics / ".catsort").exists()


def test_a_run_stopped_part_way_leaves_no_decoding_thread_behind(tmp_path: Path, colour_model: Path, capsys, monkeypatch) -> None:
    """The verdicts' threads end with the run, in it: left to the collector, they could be finalised in one of
    themselves, which then cannot wait for itself to end (an "exception ignored" at some later moment)."""
    import threading

    from catsort.fileops import RunStopped

    pics = tmp_path / "pics"
    make_album(pics, cats=8, dogs=8, others=8)
    _stop_at(monkeypatch, 3, RunStopped(f"{pics / 'cats'}: the disk is full"))
    code, _, _ = run(["--headless", str(pics), "--model", str(colour_model), "--jobs", "2"], capsys)
    assert code == 3
    assert [t.name for t in threading.enumerate() if t.name.startswith("classify")] == []


def test_copying_again_copies_only_the_photos_no_earlier_run_copied(tmp_path: Path, colour_model: Path, capsys) -> None:
    """Sorting a folder of copies again once new photos arrived copied every old one a second time (red_0 (1).jpg)."""
    pics = tmp_path / "pics"
    before = make_album(pics, cats=2, dogs=1, others=1)
    assert run(["--headless", str(pics), "--model", str(colour_model), "--copy"], capsys)[0] == 0
    once = tree_hashes(pics)
    photo(RED, seed=99).save(pics / "red_new.jpg", quality=90)
    code, out, _ = run(["--headless", str(pics), "--model", str(colour_model), "--copy", "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert (summary["copied"], summary["copied_before"], summary["kept"]) == (1, 3, 4)
    assert sorted(os.listdir(pics / "cats")) == ["red_0.jpg", "red_1.jpg", "red_new.jpg"]
    code, out, _ = run(["--headless", str(pics), "--model", str(colour_model)], capsys)  # a move still moves them
    assert code == 0 and not (pics / "red_1.jpg").exists()
    assert run(["--undo", "--all", str(pics)], capsys)[0] == 0
    assert set(tree_hashes(pics)) == set(before) | {"red_new.jpg"} and once["cats/red_1.jpg"] == before["red_1.jpg"]
    assert run(["--headless", str(pics), "--model", str(colour_model), "--copy"], capsys)[0] == 0
    (pics / "red_0.jpg").write_bytes((pics / "red_0.jpg").read_bytes() + b"edited")  # changed since: its copy is not it any more
    code, out, _ = run(["--headless", str(pics), "--model", str(colour_model), "--copy"], capsys)
    assert code == 0 and "3 of those kept in place were copied by an earlier run, and are not copied again." in out
    assert sorted(os.listdir(pics / "cats")) == ["red_0 (1).jpg", "red_0.jpg", "red_1.jpg", "red_new.jpg"]
