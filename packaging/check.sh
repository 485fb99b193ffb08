#!/usr/bin/env bash
# The packaging check (.ci/run runs it after the tests): build the bundle and the .deb and check them.
#   bash packaging/check.sh
# 1 build           packaging/build.sh (pinned venv, PyInstaller, leak check, size, .tar.gz)
# 2 headless        frozen `catsort --headless` on a temporary folder of real photos (60 from
#                   ../shared/data/real when present, generated ones otherwise, plus a HEIC, a PNG, a
#                   broken file and a text file): every file must land where `python -m catsort` puts it
# 3 version         `catsort --version` names the app version and the model's sha256 prefix
#   ctrl-c          Ctrl-C at 0.3 s (starting) and 3 s (the window open): exit 130, never a traceback
# 4 self-test       `catsort-gui --self-test` offscreen, and on xcb under xvfb-run when available
# 5 ldd             the Qt platform plugins miss no library (the other Qt plugins are listed, not judged)
# 6 portable        the .tar.gz unpacks and runs
# 7 deb             packaging/linux/build_deb.sh (desktop-file-validate, appstreamcli, lintian)
# 8 deb install     apt-get install ./catsort_*.deb, the same folder sorted by /usr/bin/catsort, apt-get remove
# Prints PASS/FAIL/SKIP per step and exits non-zero if any step failed.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=${CATSORT_PKG_OUT:-$repo/runs/pkg}
export CATSORT_PKG_OUT=$out
bundle=$out/dist/catsort
py=${PYTHON:-python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/catsort-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
results=()
failed=0
t0=$(date +%s)

record() {  # record NAME STATUS SECONDS [NOTE]
    results+=("$(printf '%-4s %-34s %4ss  %s' "$2" "$1" "$3" "${4:-}")")
    [ "$2" = FAIL ] && failed=1
    return 0
}
step() {  # step NAME FUNCTION: run it, record PASS/FAIL (a function may print SKIP: reason and return 3)
    local name=$1 start rc
    shift
    echo
    echo "=================== $name"
    start=$(date +%s)
    "$@"
    rc=$?
    if [ $rc -eq 0 ]; then record "$name" PASS $(( $(date +%s) - start ))
    elif [ $rc -eq 3 ]; then record "$name" SKIP $(( $(date +%s) - start )) "$(cat "$tmp/skip" 2>/dev/null)"
    else record "$name" FAIL $(( $(date +%s) - start )) "exit $rc"; fi
}
skip() { echo "SKIP: $*"; echo "$*" > "$tmp/skip"; return 3; }

# --- the photo folder -------------------------------------------------------------------------------
make_photos() {
    local src=$tmp/photos real=${CATSORT_REAL_PHOTOS:-$repo/../shared/data/real}
    mkdir -p "$src"
    "$py" - "$src" "$real" <<'PY'
import shutil, sys
from pathlib import Path
import numpy as np
from PIL import Image
src, real = Path(sys.argv[1]), Path(sys.argv[2])
picked = []
if real.is_dir():
    for label in ("cat", "dog", "other"):
        files = sorted(p for p in (real / label).glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".heic"))
        picked += files[:: max(1, len(files) // 20)][:20]  # 20 spread over each class
    for i, f in enumerate(picked):
        shutil.copy2(f, src / f"{i:03d}_{f.name}")
    print(f"{len(picked)} real photos from {real}")
else:
    # No real photos (a fresh clone): 30 generated ones (noise: the model leaves them in place) plus the
    # self-test samples in several variants, so a cat is moved and the comparison proves something.
    rng = np.random.default_rng(0)
    for i in range(30):
        pixels = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(src / f"generated_{i:02d}.jpg", quality=85)
    samples = Path.cwd() / "assets" / "samples"  # check.sh runs from the repository root
    for f in sorted(samples.glob("*")):
        if f.suffix.lower() in (".jpg", ".png", ".heic"):
            shutil.copy2(f, src / f"sample_{f.name}")
    with Image.open(samples / "chelsea.jpg") as cat:
        cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(src / "sample_chelsea_mirrored.jpg", quality=90)
        cat.resize((288, 191)).save(src / "sample_chelsea_small.jpg", quality=75)
    print(f"{real} absent: 30 generated photos and the self-test samples")
first = sorted(src.glob("*.jpg"))[0]
with Image.open(first) as img:
    img.convert("RGB").save(src / "as_png.png")
    try:
        from pillow_heif import register_heif_opener  # the dev extra has the encoder
        register_heif_opener()
        img.convert("RGB").save(src / "as_heic.heic", quality=80)
    except ImportError:
        print("pillow-heif not installed: no HEIC in the folder")
(src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
(src / "notes.txt").write_text("not a photo\n")
PY
}

tree_of() {  # every file under $1 except the journal folder, with its content hash, sorted
    (cd "$1" && find . -path ./.catsort -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}

sort_and_compare() {  # sort_and_compare LABEL COMMAND...: sort a fresh copy with COMMAND, compare with the Python run
    local label=$1 dir=$tmp/sorted-$1 rc
    shift
    rm -rf "$dir"; cp -a "$tmp/photos" "$dir"
    "$@" --headless "$dir" > "$tmp/$label.out" 2>&1
    rc=$?
    tail -3 "$tmp/$label.out"
    echo "$label exit code $rc (python: $(cat "$tmp/python.rc"))"
    [ "$rc" = "$(cat "$tmp/python.rc")" ] || { echo "exit codes differ"; return 1; }
    tree_of "$dir" > "$tmp/$label.tree"
    if ! diff -u "$tmp/python.tree" "$tmp/$label.tree"; then
        echo "$label puts files elsewhere than the Python install"; return 1
    fi
    echo "$label: all $(wc -l < "$tmp/$label.tree") files where python -m catsort puts them"
}

# --- steps ------------------------------------------------------------------------------------------
s_build() { bash packaging/build.sh; }

s_headless() {
    [ -x "$bundle/catsort" ] || { echo "no bundle"; return 1; }
    make_photos || return 1
    rm -rf "$tmp/sorted-python"; cp -a "$tmp/photos" "$tmp/sorted-python"
    "$py" -m catsort --headless "$tmp/sorted-python" > "$tmp/python.out" 2>&1
    echo $? > "$tmp/python.rc"
    tail -3 "$tmp/python.out"
    tree_of "$tmp/sorted-python" > "$tmp/python.tree"
    local moved
    moved=$(grep -cE '\./(cats|dogs)/' "$tmp/python.tree" || true)
    echo "python -m catsort moved $moved files into cats/ or dogs/"
    [ "$moved" -gt 0 ] || { echo "nothing was moved: the comparison would prove nothing"; return 1; }
    sort_and_compare frozen "$bundle/catsort"
}

s_version() {
    local text sha version
    text=$("$bundle/catsort" --version 2>&1) || { echo "$text"; return 1; }
    echo "$text"
    version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' catsort/__init__.py)
    sha=$("$py" -c 'import json; print(json.load(open("assets/model.json"))["onnx"]["sha256"][:8])')
    grep -q "$version" <<< "$text" || { echo "--version does not name $version"; return 1; }
    grep -q "$sha" <<< "$text" || { echo "--version does not name the model's sha256 ($sha...)"; return 1; }
}

s_ctrl_c() {  # frozen: the start-up handler (set from packaging/rth_stop_quietly.py on) and the open window's
    [ -d "$tmp/photos" ] || { echo "no photo folder (the headless step makes it)"; return 1; }
    "$py" - "$bundle" "$tmp/photos" "$tmp/ctrl-c-config" <<'PY'
import os, signal, subprocess, sys, time
bundle, photos, config = sys.argv[1:4]
bad = 0
for prog, args, delay in (("catsort", ["--headless", "--dry-run"], 0.3), ("catsort-gui", [], 0.3), ("catsort-gui", [], 3)):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": config}
    # SIGINT at its default, as in a terminal: a job started in the background of a script ignores it
    p = subprocess.Popen([f"{bundle}/{prog}", *args, photos], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    try:
        err = p.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        print(f"{prog}: Ctrl-C after {delay} s did not stop it")
        bad = 1
        continue
    lines = [line for line in err.splitlines() if "propagateSizeHints" not in line]  # the offscreen plugin's own notice
    ok = p.returncode == 130 and not any("Traceback" in line or "Failed to execute" in line for line in lines)
    print(f"{prog}: Ctrl-C after {delay} s: exit {p.returncode}, {' | '.join(lines) or 'nothing on stderr'}")
    bad |= not ok
sys.exit(bad)
PY
}

s_selftest_offscreen() {  # in a fresh home: the self-test must leave the user's settings alone, and onnxruntime keep no device ID
    local home=$tmp/selftest-home left
    rm -rf "$home"; mkdir -p "$home"
    HOME=$home XDG_CONFIG_HOME=$home/.config XDG_CACHE_HOME=$home/.cache \
        QT_QPA_PLATFORM=offscreen timeout 300 "$bundle/catsort-gui" --self-test || return 1
    left=$(cd "$home" && find ./.config/catsort ./.cache/Microsoft -type f 2> /dev/null | sort)
    [ -z "$left" ] || { echo "the self-test left the window's settings, or onnxruntime's telemetry, in the user's home:"; echo "$left"; return 1; }
}

s_selftest_xcb() {
    command -v xvfb-run > /dev/null || { skip "xvfb-run not installed"; return; }
    QT_QPA_PLATFORM=xcb timeout 300 xvfb-run -a -s "-screen 0 1280x800x24" "$bundle/catsort-gui" --self-test
}

s_ldd() {
    local plugins=$bundle/_internal/PySide6/Qt/plugins bad=0 f missing
    [ -d "$plugins/platforms" ] || { echo "no Qt platform plugins in the bundle"; return 1; }
    for f in "$plugins"/platforms/*.so; do
        missing=$(ldd "$f" | grep "not found")
        if [ -n "$missing" ]; then echo "$(basename "$f"): $missing"; bad=1; else echo "$(basename "$f"): nothing missing"; fi
    done
    for f in $(find "$plugins" -name '*.so' -not -path '*/platforms/*' | sort); do
        missing=$(ldd "$f" | grep "not found" | awk '{print $1}' | tr '\n' ' ')
        [ -z "$missing" ] || echo "  (not judged) ${f#"$plugins"/}: missing $missing"
    done
    return $bad
}

s_portable() {
    local tarball
    tarball=$(ls "$out"/catsort-*-linux-*.tar.gz 2>/dev/null | head -1)
    [ -n "$tarball" ] || { echo "no .tar.gz"; return 1; }
    mkdir -p "$tmp/portable" && tar -C "$tmp/portable" -xzf "$tarball" || return 1
    echo "$(basename "$tarball"): $(du -m "$tarball" | cut -f1) MiB"
    "$tmp/portable/catsort/catsort" --version || return 1
    sort_and_compare portable "$tmp/portable/catsort/catsort"
}

s_deb() { bash packaging/linux/build_deb.sh "$bundle"; }

s_deb_install() {
    local deb
    deb=$(ls "$out"/catsort_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { echo "no .deb"; return 1; }
    [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null || { skip "needs root and apt-get"; return; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$(realpath "$deb")" || return 1
    local ok=0
    /usr/bin/catsort --version || ok=1
    sort_and_compare deb /usr/bin/catsort || ok=1
    QT_QPA_PLATFORM=offscreen timeout 300 /usr/bin/catsort-gui --self-test || { echo "/usr/bin/catsort-gui --self-test failed"; ok=1; }
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -q catsort || ok=1
    if [ -e /usr/lib/catsort ] || [ -e /usr/bin/catsort ]; then echo "files left after apt-get remove"; ok=1; fi
    return $ok
}

step "build (packaging/build.sh)" s_build
if [ -x "$bundle/catsort" ]; then
    step "frozen --headless = python -m catsort" s_headless
    step "catsort --version" s_version
    step "Ctrl-C: starting, open window" s_ctrl_c
    step "catsort-gui --self-test (offscreen)" s_selftest_offscreen
    step "catsort-gui --self-test (xcb, Xvfb)" s_selftest_xcb
    step "ldd Qt platform plugins" s_ldd
    step "portable .tar.gz" s_portable
    step ".deb build + validate + lintian" s_deb
    step ".deb install, sort, remove" s_deb_install
fi

echo
echo "=================== packaging check summary ($(( $(date +%s) - t0 )) s in all)"
printf '%s\n' "${results[@]}"
if [ $failed -ne 0 ]; then echo "PACKAGING CHECK: FAIL"; exit 1; fi
echo "PACKAGING CHECK: PASS"
