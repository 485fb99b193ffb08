"""The one test of whether a bundle's file is an ELF object, and objdump's view of one.

fix_runpaths.py, audit_bundle.py and deb_depends.py each walk the bundle's ELF files; with one
definition they cannot disagree on which files those are. A file that cannot be read raises
OSError: a bundle the build just wrote is readable, and a file left out would go unchecked.

    from elf import is_elf          # from packaging/linux/ (deb_depends.py)
    from linux.elf import is_elf    # from packaging/ (the script's own folder is first on sys.path)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

MAGIC = b"\x7fELF"


def is_elf(path: Path) -> bool:
    """Whether ``path`` starts with the ELF magic (shared libraries, executables, Python extensions)."""
    with path.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def objdump(flag: str, path: Path) -> str:
    """``objdump FLAG PATH``'s output ("" if objdump cannot read the file: it is then not a dynamic object)."""
    return subprocess.run(["objdump", flag, str(path)], capture_output=True, text=True, check=False).stdout
