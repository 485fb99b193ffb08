"""Start-up: the optimised-graph cache of catsort.model, and what a run imports before it needs it.

Every test has a cache folder of its own (``CATSORT_CACHE_DIR``); none is timed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from conftest import BLUE, GREEN, RED, in_threads, make_album, photo

from catsort import model as model_mod
from catsort.images import load_views, stack_views
from catsort.model import Classifier, ModelCard, read_cached_graph, shipped_card_path

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelCard.load(shipped_card_path())


@pytest.fixture(scope="module")
def inputs(card: ModelCard, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """The shipped model's inputs for a few generated photos (a landscape, a portrait, a small one)."""
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for i, (colour, size) in enumerate(((RED, (640, 480)), (BLUE, (480, 640)), (GREEN, (300, 200)))):
        path = folder / f"p{i}.jpg"
        photo(colour, size, seed=i).save(path, quality=90)
        paths.append(path)
    return stack_views([load_views(p, card.views) for p in paths], card.views)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CATSORT_CACHE_DIR", str(folder))
    return folder


def cached_files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_first_session_writes_the_cache_and_later_ones_load_it(card, inputs, cache: Path) -> None:
    first = Classifier(card, threads=1)
    assert first.source == "cache-written" and first.cache_problem is None
    files = cached_files(cache)
    assert files == [first.cache_path], "one cached graph and no temporary file left"
    assert files[0].name.startswith(card.onnx_sha256[:16])
    second = Classifier(card, threads=1)
    assert second.source == "cache" and second.cache_path == first.cache_path
    assert cached_files(cache) == files
    np.testing.assert_array_equal(first.logits(inputs), second.logits(inputs))


def test_same_predictions_with_and_without_the_cache(card, inputs, cache: Path, monkeypatch) -> None:
    Classifier(card, threads=1)  # writes it
    cached = Classifier(card, threads=1)
    assert cached.source == "cache"
    shipped = Classifier(card, threads=1, cache=False)
    assert shipped.source == "model"
    monkeypatch.setenv("CATSORT_CACHE_DIR", "")  # the empty override: no cache at all
    uncached = Classifier(card, threads=1)
    assert uncached.source == "model" and "empty" in uncached.cache_problem
    a, b, c = cached.logits(inputs), shipped.logits(inputs), uncached.logits(inputs)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(b, c)
    assert (cached.probabilities(a).argmax(1) == shipped.probabilities(b).argmax(1)).all()


@pytest.mark.parametrize("damage", ["truncated", "a flipped byte", "empty", "garbage", "another key", "foreign graph", "a FIFO"])
def test_a_damaged_or_foreign_cache_file_is_ignored_and_written_again(card, inputs, cache: Path, colour_model: Path, damage: str) -> None:
    good = Classifier(card, threads=1)
    path = good.cache_path
    assert path is not None
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "a flipped byte":
        path.write_bytes(data[:-1000] + bytes([data[-1000] ^ 0x40]) + data[-999:])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "another key":  # whole and hashed, but written for another onnxruntime
        magic, header, payload = data.split(b"\n", 2)
        meta = json.loads(header)
        meta["key"]["onnxruntime"] = "0.0.1"
        path.write_bytes(magic + b"\n" + json.dumps(meta).encode() + b"\n" + payload)
    elif damage == "a FIFO":  # opened as a file it would wait for a writer forever
        path.unlink()
        os.mkfifo(path)
    else:  # a valid cache file of another model under this model's name
        other = Classifier(ModelCard.load(colour_model), threads=1)
        assert other.cache_path is not None and other.cache_path != path
        shutil.copy(other.cache_path, path)
    again = Classifier(card, threads=1)
    assert again.source == "cache-written", damage
    assert read_cached_graph(path, model_mod._cache_key(card, onnxruntime)) is not None, "written again, whole"
    np.testing.assert_allclose(again.logits(inputs), good.logits(inputs), rtol=0, atol=1e-5)
    assert Classifier(card, threads=1).source == "cache"


def test_an_unusable_cache_folder_falls_back_to_the_shipped_model(card, inputs, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CATSORT_CACHE_DIR", str(blocker / "cache"))
    under_a_file = Classifier(card, threads=1)
    assert under_a_file.source == "model" and "cannot write the cache" in under_a_file.cache_problem
    if os.geteuid() != 0:  # root writes into a folder whatever its mode says; the mount below covers root
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        monkeypatch.setenv("CATSORT_CACHE_DIR", str(locked))
        assert Classifier(card, threads=1).source == "model"
    reference = Classifier(card, threads=1, cache=False)
    np.testing.assert_array_equal(under_a_file.logits(inputs), reference.logits(inputs))


def _mount_tmpfs(where: Path, size: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting needs root")
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"mount not permitted here: {proc.stderr.strip()}")


def _umount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_read_only_or_full_cache_disk_falls_back_silently(card, inputs, tmp_path: Path, monkeypatch) -> None:
    full, read_only = tmp_path / "full", tmp_path / "ro"
    _mount_tmpfs(full, "2m")  # smaller than the optimised graph (~10 MB)
    try:
        _mount_tmpfs(read_only, "16m")
        try:
            monkeypatch.setenv("CATSORT_CACHE_DIR", str(read_only))
            written = Classifier(card, threads=1)
            assert written.source == "cache-written"
            subprocess.run(["mount", "-o", "remount,ro", str(read_only)], check=True)
            assert Classifier(card, threads=1).source == "cache", "a read-only cache is still read"
            monkeypatch.setenv("CATSORT_CACHE_DIR", str(read_only / "elsewhere"))
            ro = Classifier(card, threads=1)
            assert ro.source == "model" and "Read-only" in ro.cache_problem
        finally:
            _umount(read_only)
        monkeypatch.setenv("CATSORT_CACHE_DIR", str(full))
        on_full = Classifier(card, threads=1)
        assert on_full.source == "model" and on_full.cache_problem
        assert cached_files(full) == [], "nothing left on the full disk"
        np.testing.assert_allclose(on_full.logits(inputs), written.logits(inputs), rtol=0, atol=1e-5)
    finally:
        _umount(full)


def test_concurrent_writers_leave_one_whole_file(card, inputs, cache: Path) -> None:
    results: list[Classifier] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            results.append(Classifier(card, threads=1))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    in_threads(load, 3)
    assert not errors and len(results) == 3
    files = cached_files(cache)
    assert len(files) == 1 and files[0].suffix == ".ortcache", files
    assert Classifier(card, threads=1).source == "cache"
    for r in results[1:]:
        np.testing.assert_allclose(r.logits(inputs), results[0].logits(inputs), rtol=0, atol=1e-5)


def test_concurrent_processes_share_the_cache(cache: Path, tmp_path: Path) -> None:
    """Several catsort processes starting at once on an empty cache: each sorts, one file remains."""
    pics = tmp_path / "pics"
    make_album(pics, cats=1, dogs=1, others=1)
    env = {**os.environ, "CATSORT_CACHE_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-m", "catsort", "--headless", str(pics), "--dry-run", "--json", "-q"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert json.loads(out)["files"] == 3 and "Traceback" not in err
    assert [p.suffix for p in cached_files(cache)] == [".ortcache"]


def test_stale_temporary_files_and_old_graphs_are_pruned(card, cache: Path) -> None:
    cache.mkdir()
    stale, fresh = cache / ".optimise-dead.onnx", cache / ".write-busy.tmp"
    for p in (stale, fresh):
        p.write_bytes(b"x" * 100)
    old = time.time() - 2 * model_mod._STALE_TEMP_SECONDS
    os.utime(stale, (old, old))
    for i in range(6):  # graphs of other models or onnxruntime versions, oldest first
        p = cache / f"{i:016x}-{i:016x}.ortcache"
        p.write_bytes(b"old")
        os.utime(p, (old + i, old + i))
    Classifier(card, threads=1)
    names = {p.name for p in cached_files(cache)}
    assert stale.name not in names and fresh.name in names, "a temporary file of a live writer stays"
    graphs = sorted(n for n in names if n.endswith(".ortcache"))
    assert len(graphs) == model_mod._KEEP and f"{5:016x}-{5:016x}.ortcache" in graphs


def test_a_model_that_does_not_match_its_card_is_refused_even_with_a_cache(card, cache: Path, tmp_path: Path) -> None:
    from catsort.errors import ModelError

    Classifier(card, threads=1)
    copy = tmp_path / "model"
    copy.mkdir()
    shutil.copy(card.onnx_path, copy / card.onnx_path.name)
    shutil.copy(shipped_card_path(), copy / "model.json")
    with (copy / card.onnx_path.name).open("r+b") as f:
        f.seek(5000)
        byte = f.read(1)
        f.seek(5000)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ModelError, match="does not match its card"):
        Classifier(ModelCard.load(copy / "model.json"), threads=1)


def _imported_after(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    code = ("import sys\nfrom catsort.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', *(m for m in ('numpy', 'PIL', 'onnxruntime') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.rsplit("LOADED", 1)[1].split())


def test_undo_and_version_never_import_onnxruntime(tmp_path: Path) -> None:
    assert _imported_after(["--undo", str(tmp_path)]) == set(), "undo needs none of numpy, Pillow, onnxruntime"
    assert "onnxruntime" not in _imported_after(["--version"]), "the card's identity needs no session"


def test_the_program_flushes_everything_before_it_leaves(tmp_path: Path, colour_model: Path, cache: Path) -> None:
    """Run as a program, catsort ends without the interpreter's teardown: its output is whole all the same."""
    pics = tmp_path / "pics"
    make_album(pics, cats=2, dogs=2, others=2)
    report = tmp_path / "report.csv"
    env = {**os.environ, "CATSORT_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-m", "catsort", "--headless", str(pics), "--model", str(colour_model), "--json",
                           "--report", str(report), "-v"], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["moved"] == 4
    assert len(report.read_text().splitlines()) == 7 and proc.stderr.count("\n") >= 7
    undo = subprocess.run([sys.executable, "-m", "catsort", "--undo", str(pics)], capture_output=True, text=True, env=env, cwd=REPO)
    assert undo.returncode == 0 and "restored 4 files" in undo.stderr


def test_onnxruntime_keeps_no_device_id_and_queues_no_events(tmp_path: Path, cache: Path) -> None:
    """onnxruntime's Linux wheels record a device ID and usage events under ~/.cache/Microsoft for Microsoft,
    unless told not to before they start: a whole sort (the shipped model) leaves nothing there."""
    pics, home = tmp_path / "pics", tmp_path / "home"
    make_album(pics, cats=1, dogs=1, others=1)
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORT_")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), CATSORT_CACHE_DIR=str(cache))
    proc = subprocess.run([sys.executable, "-m", "catsort", "--headless", str(pics), "--dry-run", "-q"],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_stop_while_the_program_starts_is_one_line_not_a_traceback(signum: str) -> None:
    """Ctrl-C while Python still imports the app (what a user can hit in the first half second): no file is touched yet.
    The signal starts at its default, as in a terminal, whatever this test runs under (``nohup`` ignores SIGHUP)."""
    code = (f"import os, signal, time\nsignal.signal(signal.{signum}, signal.SIG_DFL)\n"
            "from catsort.entry import stop_quietly_while_starting\nstop_quietly_while_starting()\n"
            f"os.kill(os.getpid(), signal.{signum})\ntime.sleep(30)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (130, "catsort: interrupted while starting; nothing was changed\n")


def test_nohups_ignored_hangup_stays_ignored_while_starting() -> None:
    code = ("import os, signal\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\nfrom catsort.entry import stop_quietly_while_starting\n"
            "stop_quietly_while_starting()\nos.kill(os.getpid(), signal.SIGHUP)\nprint('still here')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "still here\n"), done.stderr
