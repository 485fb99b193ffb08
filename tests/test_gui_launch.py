"""Starting the window where it cannot start gives one line and exit 2, never Qt's abort; Qt stays in gui/."""

from __future__ import annotations

import subprocess
import sys

import pytest

from catsort.cli import main
from catsort.gui import app


def test_without_pyside6_plain_catsort_says_how_to_install(monkeypatch, capsys) -> None:
    real = app.importlib.util.find_spec
    monkeypatch.setattr(app.importlib.util, "find_spec", lambda name, *a: None if name == "PySide6" else real(name, *a))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'catsort[gui]'" in err and "--headless" in err


def test_without_a_display_it_says_so(monkeypatch, capsys) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("displays are a Linux question")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main(["/tmp"]) == 2
    err = capsys.readouterr().err
    assert "no display" in err and "catsort --headless PATH" in err and err.count("\n") == 1


def test_a_display_that_does_not_answer_is_said_in_one_line_not_a_qt_abort(monkeypatch, capsys, tmp_path) -> None:
    """A stale ssh DISPLAY, or a Wayland socket of a session that ended: Qt would abort, advising a reinstall."""
    if not sys.platform.startswith("linux") or app._x_answers(":0") is None:
        pytest.skip("needs Linux and libxcb")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":987")  # no X server there
    assert main([]) == 2
    assert capsys.readouterr().err == ("catsort: cannot open the window: the display :987 does not answer (a stale DISPLAY from ssh, "
                                       "or sudo without the user's Xauthority?); sort from the terminal: catsort --headless PATH\n")
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-gone")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert main([]) == 2
    assert "the Wayland display wayland-gone does not answer" in capsys.readouterr().err


def test_the_app_icon_has_every_size_the_theme_gets(qapp) -> None:
    sizes = sorted(size.width() for size in app.app_icon().availableSizes())
    assert sizes == [16, 24, 32, 48, 64, 128, 256, 512]


def test_headless_flags_without_headless_are_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--dry-run", "/tmp"])
    assert exc.value.code == 2 and "--dry-run goes with --headless" in capsys.readouterr().err


def test_the_core_and_undo_never_load_qt_or_the_model_runtime() -> None:
    """Qt only in catsort/gui/; ``--undo``'s modules load neither onnxruntime nor Pillow."""
    core = "import sys, catsort.cli, catsort.sort, catsort.apply, catsort.report; assert 'PySide6' not in sys.modules"
    undo = ("import sys, catsort.fileops, catsort.apply, catsort.plan;"
            "bad = [m for m in ('onnxruntime', 'PIL', 'pi_heif', 'numpy') if m in sys.modules]; assert not bad, bad")
    for code in (core, undo):
        subprocess.run([sys.executable, "-c", code], check=True)


def test_version_names_the_model(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    out = capsys.readouterr().out
    import catsort

    assert out.startswith(f"catsort {catsort.__version__}") and "sha256" in out


def test_the_window_opens_on_the_real_xcb_platform(tmp_path) -> None:
    """Not only offscreen: under Xvfb, Qt's xcb plugin loads, the window shows and the self-test passes."""
    import os
    import shutil

    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run not installed (.ci/run installs it)")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "CATSORT_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, "-m", "catsort.gui.app", "--self-test"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "self-test: passed" in done.stdout
    assert [str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()] == [], "the user's settings (Recent) stay as they were"


def test_the_qt_binding_keeps_none_alive() -> None:
    """PySide6 6.12.0 on Python 3.11 drops a reference to None on each void call: the window dies after
    some thousands of paints. Guard the pin: a few hundred void calls must leave None's count alone."""
    code = (
        "import sys; from PySide6.QtWidgets import QApplication; from PySide6.QtGui import QPainter, QPixmap;"
        "from PySide6.QtCore import QRect; app = QApplication([]); pm = QPixmap(8, 8); p = QPainter(pm);"
        "before = sys.getrefcount(None); [p.drawRect(QRect(0, 0, 4, 4)) for _ in range(500)];"
        "lost = before - sys.getrefcount(None); p.end(); assert lost < 100, f'{lost} references to None lost'"
    )
    import os

    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def test_the_window_command_names_its_version_too(capsys) -> None:
    import catsort

    with pytest.raises(SystemExit) as exc:
        app.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith(f"catsort {catsort.__version__}\nmodel: ")
