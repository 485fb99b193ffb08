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

pinned() { grep -hvE '^\s*(#|$)' packaging/requirements-app.txt packaging/requirements-build.txt | sed 's/\s*#.*//' |
    tr 'A-Z_' 'a-z-' | sort; }
frozen() { "$venv/bin/python" -m pip freeze --all --exclude pip --exclude setuptools --exclude wheel | tr 'A-Z_' 'a-z-' | sort; }

if [ "${CATSORT_FRESH_VENV:-0}" = 1 ] || [ ! -x "$venv/bin/python" ] || [ "$(frozen 2>/dev/null)" != "$(pinned)" ]; then
    echo "== build venv: $venv (fresh)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --no-deps -r packaging/requirements-app.txt -r packaging/requirements-build.txt
fi
if [ "$(frozen)" != "$(pinned)" ]; then
    echo "build venv does not hold exactly the pinned packages:"; diff <(pinned) <(frozen) || true; exit 1
fi

# pyproject must not need anything the pins do not satisfy (catsort itself is frozen from the source tree).
"$venv/bin/python" - <<'PY'
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
"$venv/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$out/dist" --workpath "$out/build" packaging/catsort.spec
echo "== PyInstaller took $(( $(date +%s) - start )) s"

bundle=$out/dist/catsort
"$venv/bin/python" packaging/audit_bundle.py "$bundle" --limit-mb 300

# Portable archive: sorted names, fixed owner and mtime, so the same bundle gives the same bytes.
version=$("$venv/bin/python" -c 'import sys; sys.path.insert(0, "."); from catsort import __version__; print(__version__)')
arch=$(uname -m)
tarball=$out/catsort-$version-linux-$arch.tar.gz
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C "$out/dist" -cf - catsort | gzip -n -6 > "$tarball"
echo "== portable archive: $tarball ($(du -m "$tarball" | cut -f1) MiB)"
echo "== bundle: $bundle ($(du -sm "$bundle" | cut -f1) MiB on disk)"
