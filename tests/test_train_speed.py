"""train.speed times two models per sub-folder of a labelled folder: a cascade costs what its gate lets
through, so the non-pets (issue 17's folder of mostly non-pet photos) are timed apart from the pets."""

from __future__ import annotations

from pathlib import Path

from conftest import BLUE, GREEN, RED, photo

from train.speed import _sample, compare


def _labelled(folder: Path, per_kind: int) -> None:
    for kind, colour in (("cat", RED), ("dog", BLUE), ("other", GREEN)):
        (folder / kind).mkdir(parents=True)
        for i in range(per_kind):
            photo(colour, (64, 48), seed=i).save(folder / kind / f"{i:02d}.jpg")


def test_photos_are_sampled_evenly_from_each_sub_folder(tmp_path: Path) -> None:
    _labelled(tmp_path, 10)
    groups = _sample(tmp_path, 5)
    assert sorted(groups) == ["cat", "dog", "other"]
    assert [p.name for p in groups["other"]] == ["00.jpg", "02.jpg", "04.jpg", "06.jpg", "08.jpg"]  # spread, not the first five


def test_the_ratio_is_the_non_pets_and_every_sub_folder_is_reported(tmp_path: Path, colour_model: Path) -> None:
    _labelled(tmp_path / "photos", 4)
    result = compare(colour_model, colour_model, tmp_path / "photos", count=4, repeats=1)
    assert set(result["new_over_old_by_folder"]) == {"cat", "dog", "other"}
    assert result["new_over_old"] == result["new_over_old_by_folder"]["other"] > 0
    assert "cat 4, dog 4, other 4" in result["method"]
    assert set(result["new"]["ms_per_photo"]) == {"cat", "dog", "other"}
