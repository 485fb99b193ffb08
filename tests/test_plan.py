"""The plan: threshold and overrides -> decisions with the names a run really writes."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import RED, make_album, photo

from catsort.classify import Prediction
from catsort.cli import main
from catsort.plan import Planner, plan

LABELS = ("cat", "dog", "other")


def pred(path: str, p: tuple[float, float, float] | None, error: str | None = None) -> Prediction:
    return Prediction(Path(path), p, p, error)


def test_threshold_override_and_error() -> None:
    preds = [pred("/a/sure.jpg", (0.9, 0.05, 0.05)), pred("/a/unsure.jpg", (0.6, 0.3, 0.1)),
             pred("/a/other.jpg", (0.1, 0.1, 0.8)), pred("/a/bad.jpg", None, "corrupt image: x")]
    d = plan(preds, LABELS, 0.8)
    assert [(x.action, x.folder, x.unsure) for x in d] == [("move", "cats", False), ("stay", None, True),
                                                           ("stay", None, False), ("error", None, False)]
    d = plan(preds, LABELS, 0.8, copy=True, overrides={Path("/a/unsure.jpg"): "dog", Path("/a/sure.jpg"): "stay",
                                                        Path("/a/bad.jpg"): "cat"})
    assert [(x.action, x.folder, x.overridden) for x in d[:2]] == [("stay", None, True), ("copy", "dogs", True)]
    assert d[3].action == "error", "an unreadable file is never moved, whatever the override"


def test_names_avoid_the_disk_and_each_other() -> None:
    preds = [pred("/a/IMG_1.jpg", (0.9, 0.05, 0.05)), pred("/a/2019/IMG_1.jpg", (0.9, 0.05, 0.05)),
             pred("/a/2020/IMG_1.jpg", (0.05, 0.9, 0.05))]
    d = plan(preds, LABELS, 0.5, taken={"cats": ["IMG_1.jpg"]})
    assert [f"{x.folder}/{x.name}" for x in d] == ["cats/IMG_1 (1).jpg", "cats/IMG_1 (2).jpg", "dogs/IMG_1.jpg"]


def test_planner_streams_one_photo_at_a_time() -> None:
    planner = Planner(LABELS, 0.5, taken={"dogs": ["x.jpg"]})
    assert planner.decide(pred("/a/x.jpg", (0.1, 0.8, 0.1))).name == "x (1).jpg"
    assert planner.decide(pred("/b/x.jpg", (0.1, 0.8, 0.1))).name == "x (2).jpg"


def test_dry_run_shows_the_name_the_run_writes(tmp_path: Path, colour_model: Path, capsys) -> None:
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=0, others=0)
    (pics / "cats").mkdir()
    photo(RED, seed=7).save(pics / "cats" / "red_0.jpg")
    assert main(["--headless", str(pics), "--model", str(colour_model), "--dry-run", "--report", str(tmp_path / "r.json")]) == 0
    planned = json.loads((tmp_path / "r.json").read_text())[0]["destination"]
    assert main(["--headless", str(pics), "--model", str(colour_model), "--report", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())[0]["destination"] == planned
    assert planned.endswith("cats/red_0 (1).jpg") and Path(planned).exists()
    capsys.readouterr()
