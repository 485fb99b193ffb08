"""Check a built bundle: nothing of the training stack inside, size within the limit, and where the megabytes go.

    python packaging/audit_bundle.py runs/pkg/dist/catsort [--limit-mb 300]

Run by build.sh with the build venv's Python (it reads the executables' embedded archives with
PyInstaller's own reader, so modules frozen into the PYZ are checked as well as files on disk).
Exit 1 on a leak or an oversized bundle.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

# Top-level packages that must never be in the app, and onnxruntime's offline tooling.
FORBIDDEN_TOP = {"tensorflow", "keras", "tf2onnx", "torch", "onnx"}
FORBIDDEN_SUB = ("onnxruntime.transformers", "onnxruntime.quantization", "onnxruntime.tools")
MB = 1_000_000


def forbidden_module(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN_TOP or name.startswith(FORBIDDEN_SUB)


def forbidden_path(rel: Path) -> bool:
    parts = rel.parts
    if parts and parts[0] == "_internal":
        parts = parts[1:]
    if not parts:
        return False
    top = parts[0].split(".")[0] if len(parts) == 1 else parts[0]
    # Directories (packages) or single-file modules/extensions named like a forbidden package;
    # "onnx" the package, not "onnxruntime".
    if top in FORBIDDEN_TOP or parts[0].split("-")[0] in FORBIDDEN_TOP and parts[0].endswith(".dist-info"):
        return True
    return len(parts) >= 2 and parts[0] == "onnxruntime" and parts[1] in ("transformers", "quantization", "tools")


def embedded_modules(exe: Path) -> list[str]:
    from PyInstaller.archive.readers import CArchiveReader

    pkg = CArchiveReader(str(exe))
    names: list[str] = []
    for entry_name in pkg.toc:
        if entry_name.endswith(".pyz") or entry_name.startswith("PYZ"):
            names.extend(pkg.open_embedded_archive(entry_name).toc)
    return names


def group_of(rel: Path) -> str:
    parts = rel.parts
    if len(parts) == 1:
        return f"executable {parts[0]} (launcher + its frozen Python modules)"
    p = parts[1:] if parts[0] == "_internal" else parts
    name = p[0]
    if name == "PySide6":
        s = "/".join(p)
        if "/plugins/" in s:
            return "PySide6: Qt plugins"
        if p[-1].startswith(("libQt6", "Qt6", "libicu")) or "/lib/" in s:
            return "PySide6: Qt libraries"
        return "PySide6: Python bindings (Qt*.abi3.so)"
    if name.startswith(("libpython", "python3")) or name in ("lib-dynload", "base_library.zip"):
        return "Python runtime"
    if name == "catsort":
        return "catsort (model, icons, samples)"
    if name.startswith("shiboken6"):
        return "shiboken6"
    for key in ("onnxruntime", "numpy", "pi_heif", "pillow_heif", "PIL", "pillow"):
        if name.startswith(key):
            return {"pillow": "PIL", "pillow_heif": "pillow_heif"}.get(key, key)
    if name.endswith(".dist-info"):
        return "package metadata and licences (*.dist-info)"
    return "other shared libraries and data" if len(p) == 1 else f"{name}/"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--limit-mb", type=float, default=300.0)
    args = parser.parse_args()
    bundle: Path = args.bundle
    problems: list[str] = []

    files = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()]
    for link in (p for p in bundle.rglob("*") if p.is_symlink() and not p.exists()):
        problems.append(f"dangling symlink: {link.relative_to(bundle)}")
    for f in files:
        rel = f.relative_to(bundle)
        if forbidden_path(rel):
            problems.append(f"forbidden file in bundle: {rel}")
    exes = [bundle / n for n in ("catsort", "catsort-gui", "catsort.exe", "catsort-gui.exe") if (bundle / n).is_file()]
    if not exes:
        problems.append(f"no catsort executable in {bundle}")
    for exe in exes:
        bad = sorted({m for m in embedded_modules(exe) if forbidden_module(m)})
        if bad:
            problems.append(f"{exe.name}: forbidden modules frozen in: {', '.join(bad[:15])}{' ...' if len(bad) > 15 else ''}")

    if sys.platform.startswith("linux"):
        from linux.elf import is_elf, objdump  # here, not at the top: the tests load this file without packaging/ on sys.path

        for f in files:
            if not is_elf(f):
                continue
            for line in objdump("-p", f).splitlines():
                if line.split()[:1] in (["RUNPATH"], ["RPATH"]):
                    absolute = [e for e in line.split()[1].split(":") if e and not e.startswith("$ORIGIN")]
                    if absolute:
                        problems.append(f"{f.relative_to(bundle)}: absolute {line.split()[0]} {':'.join(absolute)}")

    sizes: dict[str, int] = defaultdict(int)
    for f in files:
        sizes[group_of(f.relative_to(bundle))] += f.stat().st_size
    total = sum(sizes.values())
    print(f"bundle {bundle}: {total / MB:.1f} MB ({total / 2**20:.1f} MiB) in {len(files)} files")
    for group, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {size / MB:7.1f} MB  {100 * size / total:4.1f}%  {group}")
    print("  largest files:")
    for f in sorted(files, key=lambda p: -p.stat().st_size)[:12]:
        print(f"  {f.stat().st_size / MB:7.1f} MB  {f.relative_to(bundle)}")
    if total > args.limit_mb * MB:
        problems.append(f"bundle is {total / MB:.1f} MB, over the {args.limit_mb:.0f} MB limit")

    for p in problems:
        print(f"AUDIT FAIL: {p}", file=sys.stderr)
    if not problems:
        print(f"audit OK: no training-stack files or modules, {total / MB:.1f} MB <= {args.limit_mb:.0f} MB")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
