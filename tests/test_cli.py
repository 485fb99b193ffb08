"""The command line end to end: real files, a real ONNX model, real moves, reports and exit codes."""

from __future__ import annotations

import csv
import json
import os
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
    assert (summary["moved"], summary["kept"], summary["failed"]) == (6, 3, 1)
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
