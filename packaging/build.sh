#!/usr/bin/env bash
# Build the catsort bundle, one command:   bash packaging/build.sh
#
# A fresh venv holding exactly packaging/requirements-app.txt + requirements-build.txt (pinned, --no-deps,
# so the training stack cannot leak in), PyInstaller onedir from packaging/catsort.spec (two executables
# sharing one _internal/), then packaging/audit_bundle.py (leak check, size <= 300 MB, where it goes) and
# a portable .tar.gz. Output (override with CATSORT_PKG_OUT): runs/pkg/dist/catsort/ and
# runs/pkg/catsort-VERSION-linux-ARCH.tar.gz. The venv is kept between builds only while `pip freeze`
# still equals the pinned files exactly; CATSORT_FRESH_VENV=1 always recreates it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=${CATSORT_PKG_OUT:-$repo/runs/pkg}
venv=$out/venv
python=${PYTHON:-python3}
mkdir -p "$out"

# Reproducible builds: the same hash seed and timestamps for every build of one commit.
export PYTHONHASHSEED=0
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1767225600)}
export SOURCE_DATE_EPOCH
export PYTHONNOUSERSITE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The venv's Python (bin/ on Linux and macOS, Scripts/ on Windows, where the workflow runs this in Git Bash).
vpy() { if [ -x "$venv/Scripts/python.exe" ]; then "$venv/Scripts/python.exe" "$@"; else "$venv/bin/python" "$@"; fi; }
# Exit 0 if the venv holds exactly the pins that apply to this system (markers evaluated), nothing else.
venv_matches_pins() {
    vpy -I - <<'PY'
import re, sys
from importlib.metadata import distributions
from packaging.markers import Marker
from packaging.utils import canonicalize_name
want = {}
for f in ("packaging/requirements-app.txt", "packaging/requirements-build.txt"):
    for line in open(f, encoding="utf-8"):
        line = re.sub(r"\s+#.*", "", line).strip()
        if not line or line.startswith("#"):
            continue
        spec, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, _, version = spec.strip().partition("==")
        want[canonicalize_name(name)] = version.strip()
have = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
for tool in ("pip", "setuptools", "wheel"):
    have.pop(tool, None)
if have != want:
    extra = sorted(set(have) - set(want)); missing = sorted(set(want) - set(have))
    wrong = sorted(k for k in set(have) & set(want) if have[k] != want[k])
    print(f"build venv differs from the pins: extra {extra}, missing {missing}, other versions {wrong}")
    sys.exit(1)
PY
}

if [ "${CATSORT_FRESH_VENV:-0}" = 1 ] || ! venv_matches_pins 2>/dev/null; then
    echo "== build venv: $venv (fresh)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    vpy -m pip install -q --no-deps -r packaging/requirements-app.txt -r packaging/requirements-build.txt
fi
venv_matches_pins

# pyproject must not need anything the pins do not satisfy (catsort itself is frozen from the source tree).
vpy - <<'PY'
import sys, tomllib
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import Requirement
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = project["dependencies"] + project.get("optional-dependencies", {}).get("gui", [])
bad = []
for text in wanted:
    req = Requirement(text)
    try:
        have = version(req.name)
    except PackageNotFoundError:
        bad.append(f"{req} (not pinned in packaging/requirements-app.txt)")
        continue
    if not req.specifier.contains(have, prereleases=True):
        bad.append(f"{req} (pinned {have})")
if bad:
    sys.exit("pyproject asks for what the build venv does not have: " + "; ".join(bad))
print(f"== pins satisfy pyproject's {len(wanted)} runtime requirements")
PY

echo "== PyInstaller (PYTHONHASHSEED=$PYTHONHASHSEED SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
start=$(date +%s)
vpy -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$out/dist" --workpath "$out/build" packaging/catsort.spec
echo "== PyInstaller took $(( $(date +%s) - start )) s"

bundle=$out/dist/catsort
if [ "$(uname -s)" = Linux ]; then vpy packaging/fix_runpaths.py "$bundle"; fi
vpy packaging/audit_bundle.py "$bundle" --limit-mb 300
[ "$(uname -s)" = Linux ] || { echo "== bundle: $bundle"; exit 0; }  # Windows/macOS: the workflow packs it

# Portable archive: sorted names, fixed owner and mtime, so the same bundle gives the same bytes.
version=$(vpy -c 'import sys; sys.path.insert(0, "."); from catsort import __version__; print(__version__)')
arch=$(uname -m)
tarball=$out/catsort-$version-linux-$arch.tar.gz
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C "$out/dist" -cf - catsort | gzip -n -6 > "$tarball"
echo "== portable archive: $tarball ($(du -m "$tarball" | cut -f1) MiB)"
echo "== bundle: $bundle ($(du -sm "$bundle" | cut -f1) MiB on disk)"
