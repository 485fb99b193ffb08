"""train/data.py and the restricted checkpoint reader: layouts, corrupt files, dedupe, split, safety."""

from __future__ import annotations

import io
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import RED, photo, shared
from PIL import Image, ImageDraw

pytest.importorskip("imagehash", reason="needs the [train] extra")

from train.data import clean_and_split, labelled_files  # noqa: E402
from train.torch_weights import RestrictedUnpickler, UnsafePickleError, load_state_dict  # noqa: E402


def test_layouts(tmp_path: Path) -> None:
    for rel in ("ms/Cat/1.jpg", "ms/Dog/2.jpg", "kaggle/train/cat.7.jpg", "kaggle/train/dog.8.jpg", "plain/cats/a.png",
                "plain/dogs/b.png", "plain/other/c.jpg", "extra/scenes/d.jpg", "extra/people/e.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        photo(RED).save(tmp_path / rel)
    (tmp_path / "ms/Cat/Thumbs.db").write_bytes(b"junk")
    found = {p.relative_to(tmp_path).as_posix(): label for p, label in
             labelled_files([tmp_path / "ms", tmp_path / "kaggle", tmp_path / "plain"], [tmp_path / "extra"])}
    assert found == {
        "ms/Cat/1.jpg": "cat", "ms/Dog/2.jpg": "dog", "kaggle/train/cat.7.jpg": "cat", "kaggle/train/dog.8.jpg": "dog",
        "plain/cats/a.png": "cat", "plain/dogs/b.png": "dog", "plain/other/c.jpg": "other",
        "extra/scenes/d.jpg": "other", "extra/people/e.jpg": "other",
    }


def scene(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    """A picture with large shapes, so near-duplicates look alike and different seeds do not."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.integers(0, size[0] - 20), rng.integers(0, size[1] - 20)
        draw.ellipse((x0, y0, x0 + rng.integers(15, 60), y0 + rng.integers(15, 50)), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return img


def _dataset(root: Path) -> list[tuple[Path, str]]:
    (root / "Cat").mkdir(parents=True)
    (root / "Dog").mkdir()
    files = []
    for i in range(30):
        for label in ("Cat", "Dog"):
            path = root / label / f"{i}.jpg"
            scene(i if label == "Cat" else 1000 + i).save(path)
            files.append((path, label.lower()))
    shutil.copy(root / "Cat/0.jpg", root / "Cat/dupe.jpg")  # exact duplicate
    scene(1).resize((90, 68)).save(root / "Cat/near.jpg", quality=60)  # near-duplicate of 1.jpg
    (root / "Cat/666.jpg").write_bytes(b"")  # the Microsoft download's zero-byte file
    (root / "Dog/11702.jpg").write_bytes(b"GIF89a not really")
    return files


def test_cleaning_dedupe_and_deterministic_split(tmp_path: Path) -> None:
    _dataset(tmp_path / "PetImages")
    files = labelled_files([tmp_path / "PetImages"], [])
    samples, stats = clean_and_split(files, val_pct=20, test_pct=20)
    assert stats["skipped"] == {"unreadable": 2, "exact duplicate": 1, "near duplicate": 1}
    names = {s.path.name for s in samples if s.label == "cat"}
    assert "dupe.jpg" not in names and "near.jpg" not in names and len(samples) == 60
    assert {s.split for s in samples} == {"train", "val", "test"}
    # Same content, other order and location: same split, same fingerprint.
    moved = tmp_path / "copy"
    shutil.copytree(tmp_path / "PetImages", moved)
    again, stats2 = clean_and_split(list(reversed(labelled_files([moved], []))), val_pct=20, test_pct=20)
    assert stats2["fingerprint"] == stats["fingerprint"]
    assert {s.sha256: s.split for s in again} == {s.sha256: s.split for s in samples}


def test_real_microsoft_layout_is_read() -> None:
    pets = shared("PetImages")
    files = labelled_files([pets / "Cat"], [])
    assert files == [] or all(label == "cat" for _, label in files)
    sample = sorted((pets / "Cat").glob("*.jpg"))[:3]
    assert all(label == "cat" for _, label in labelled_files([pets], []) if _ in sample)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_code() -> None:
    payload = pickle.dumps({"weight": _Evil()}, protocol=2)
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|nt.system"):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def test_state_dict_round_trip_from_zip_format(tmp_path: Path) -> None:
    """A zip-format checkpoint written by hand (no torch): the reader rebuilds strided tensors."""
    import zipfile

    class Storage:
        def __init__(self, key: str) -> None:
            self.key = key

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", _Global("torch", "FloatStorage"), obj.key, "cpu", 6) if isinstance(obj, Storage) else None

    class _Global:
        def __init__(self, module: str, name: str) -> None:
            self.module, self.name = module, name

        def __reduce__(self):
            return (_Global, ())

    # Build the pickle with protocol-level GLOBAL opcodes for the names torch writes.
    buf = io.BytesIO()
    data = np.arange(6, dtype="<f4")
    pkl = (
        b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00wq\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03"
        b"((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x06tq\x08"
        b"QK\x00K\x02K\x03\x86q\tK\x01K\x02\x86q\n\x89ccollections\nOrderedDict\nq\x0b)Rq\x0ctq\rRq\x0eu."
    )
    with zipfile.ZipFile(tmp_path / "w.pth", "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/data/0", data.tobytes())
    del buf, Pickler
    state = load_state_dict(tmp_path / "w.pth")
    np.testing.assert_array_equal(state["w"], data.reshape(3, 2).T)


def test_feature_extraction_with_no_readable_image_names_the_problem(tmp_path: Path, colour_model: Path) -> None:
    """A list whose files are all missing or broken (say, relative paths from another folder) fails readably."""
    from catsort.model import ModelCard
    from train.features import extract

    onnx_path = ModelCard.load(colour_model).onnx_path
    (tmp_path / "empty.jpg").write_bytes(b"")
    good = tmp_path / "good.jpg"
    photo(RED).save(good)

    maps, ok = extract(onnx_path, [tmp_path / "empty.jpg", good], 32)
    assert maps.shape == (1, 1, 3) and ok.tolist() == [False, True]
    with pytest.raises(SystemExit, match=r"none of the 2 images could be read \(first: .*missing\.jpg\)"):
        extract(onnx_path, [tmp_path / "missing.jpg", tmp_path / "empty.jpg"], 32)
