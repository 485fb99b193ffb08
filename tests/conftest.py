"""Shared fixtures: generated photos of every awkward kind, a tiny real ONNX model, shared data paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catsort.fileops import Journal

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The key that signs undo journals: a test run never creates one in the user's own config folder.
os.environ["CATSORT_CONFIG_DIR"] = tempfile.mkdtemp(prefix="catsort-test-config-")
# The optimised-graph cache (catsort.model): never the user's own cache folder either.
os.environ["CATSORT_CACHE_DIR"] = tempfile.mkdtemp(prefix="catsort-test-cache-")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CATSORT_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(sub: str) -> Path:
    """A folder of ``../shared/data``; the test is skipped where it is absent (a user's fresh clone)."""
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


def photo(colour: tuple[int, int, int], size: tuple[int, int] = (320, 240), seed: int = 0) -> Image.Image:
    """A photo-like image: a colour with texture, different bytes for every seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.array(colour, dtype=np.float32)
    y, x = np.mgrid[0:h, 0:w]
    wave = (np.sin(x / 17.0 + seed) + np.cos(y / 23.0 - seed))[..., None] * 12
    pixels = np.clip(base + wave + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


RED, BLUE, GREEN = (200, 40, 40), (40, 40, 200), (40, 200, 40)


def write_colour_model(folder: Path, threshold: float = 0.6) -> Path:
    """A real ONNX model (mean colour -> logits: red = cat, blue = dog, green = other) with its card.

    It exercises the whole app pipeline on machines without the shared data, and shows that no
    code path depends on the shipped model.
    """
    import onnx
    from onnx import TensorProto, helper

    from catsort.checksum import file_sha256

    size = 32
    weights = np.array([[0.1, -0.05, -0.05], [-0.05, -0.05, 0.1], [-0.05, 0.1, -0.05]], dtype=np.float32)  # rows: R, G, B
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["pixels"], ["x"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=0),
            helper.make_node("MatMul", ["mean", "w"], ["logits"]),
        ],
        "colour",
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8, [None, size, size, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2]), helper.make_tensor("w", TensorProto.FLOAT, [3, 3], weights.flatten())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / "colour.onnx"
    onnx.save(model, onnx_path)
    card = {
        "name": "colour-test-model",
        "onnx": {"file": onnx_path.name, "sha256": file_sha256(onnx_path)},
        "labels": ["cat", "dog", "other"],
        "input": {"views": [{"name": "pixels", "size": size, "resize": "squash"}]},
        "calibration": {"temperature": 1.0, "threshold": threshold},
    }
    card_path = folder / "colour.json"
    card_path.write_text(json.dumps(card))
    return card_path


@pytest.fixture(scope="session")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colour_model(tmp_path_factory.mktemp("model"))


def make_album(folder: Path, cats: int = 3, dogs: int = 3, others: int = 3) -> dict[str, str]:
    """Write JPEGs the colour model sorts: red ones are "cats", blue "dogs", green "other"."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for count, colour, stem in ((cats, RED, "red"), (dogs, BLUE, "blue"), (others, GREEN, "green")):
        for i in range(count):
            photo(colour, seed=n).save(folder / f"{stem}_{i}.jpg", quality=90)
            n += 1
    return tree_hashes(folder)


def tree_hashes(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every non-hidden file below ``folder``."""
    import hashlib

    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def intent_line(journal: Journal, seq: int, src: Path, dst: Path) -> None:
    """Journal the move of ``src`` to ``dst`` as ``apply_plan`` does (fsynced), without doing it."""
    st = os.lstat(src)
    journal.write(
        {"seq": seq, "op": "move", "src": journal.rel(src), "dst": journal.rel(dst), "size": st.st_size,
         "ino": st.st_ino, "dev": st.st_dev, "tmp": journal.rel(dst.with_name(f".catsort-{journal.id}-{seq}.tmp"))},
        sync=True,
    )


def move_announced(folder: Path, cats: int = 1, dogs: int = 0, others: int = 0) -> tuple[dict[str, str], Journal, Path, Path]:
    """An album (see :func:`make_album`) whose first cat's move is journaled (and fsynced) but not yet carried out:
    (the album's hashes, the open journal, the photo, its destination)."""
    before = make_album(folder, cats, dogs, others)
    journal = Journal.start(folder, "move")
    (folder / "cats").mkdir()
    src, dst = folder / "red_0.jpg", folder / "cats" / "red_0.jpg"
    intent_line(journal, 1, src, dst)
    return before, journal, src, dst


def crashed(journal: Journal) -> None:
    """Leave ``journal`` open, with no end record, as a kill -9 does."""
    journal._file.close()


# --- mounts ------------------------------------------------------------------------------------


def sh(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


def umount(where: Path) -> None:
    """Unmount ``where`` if anything is mounted there, lazily if busy. Not asked of ``mountpoint`` first: a FUSE mount
    whose driver died cannot be looked at ("transport endpoint is not connected"), and must still be unmounted."""
    if sh("umount", str(where)).returncode != 0:
        sh("umount", "-l", str(where))


@pytest.fixture
def mounts() -> Iterator[Callable[..., Path]]:
    """``mount(where, *options)`` -> mounts a tmpfs (or runs ``mount`` with options); all undone at the end."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting needs root")
    done: list[Path] = []

    def mount(where: Path, *args: str) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        proc = sh("mount", *args, str(where))
        if proc.returncode != 0:
            pytest.skip(f"mount {' '.join(args)} not permitted here: {proc.stderr.strip()}")
        done.append(where)
        return where

    try:
        yield mount
    finally:
        for where in reversed(done):
            umount(where)


def tmpfs(mounts: Callable[..., Path], where: Path, size: str) -> Path:
    return mounts(where, "-t", "tmpfs", "-o", f"size={size}", "tmpfs")


def remount(where: Path, option: str) -> None:
    proc = sh("mount", "-o", f"remount,{option}", str(where))
    assert proc.returncode == 0, proc.stderr


def in_threads(target: Callable[[], object], count: int) -> None:
    """Run ``target`` in ``count`` threads at once, and wait for them all."""
    import threading

    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
