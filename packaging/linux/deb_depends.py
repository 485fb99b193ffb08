"""Read every ELF file of the bundle: the glibc floor it needs and the Debian packages of what it links to.

    python3 packaging/linux/deb_depends.py BUNDLE [--json REPORT.json]

Prints one line, the .deb's Depends value (libc6 (>= the highest GLIBC_x.y symbol version any file
asks for), then one package per system library some file links to and the bundle does not carry),
and writes REPORT.json with the details (glibc and GLIBCXX floors, the files that set them, each
library's package). Libraries are resolved with ldconfig + dpkg -S where installed, else from the
table below (the Qt xcb plugin's libraries, which a build machine without a screen may not have).
Exit 1 when a library can be resolved neither way.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from elf import is_elf, objdump

KNOWN = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-image.so.0": "libxcb-image0", "libEGL.so.1": "libegl1",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1", "libxcb-render.so.0": "libxcb-render0", "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xinput.so.0": "libxcb-xinput0", "libxcb-glx.so.0": "libxcb1", "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1", "libX11.so.6": "libx11-6", "libxkbcommon.so.0": "libxkbcommon0",
    "libSM.so.6": "libsm6", "libICE.so.6": "libice6", "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6", "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0", "libgio-2.0.so.0": "libglib2.0-0", "libOpenGL.so.0": "libopengl0",
    "libGL.so.1": "libgl1", "libGLX.so.0": "libglx0", "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0", "libwayland-egl.so.1": "libwayland-egl1",
    "libdbus-1.so.3": "libdbus-1-3", "libz.so.1": "zlib1g", "libstdc++.so.6": "libstdc++6", "libgcc_s.so.1": "libgcc-s1",
    "libdrm.so.2": "libdrm2", "libgbm.so.1": "libgbm1", "libvulkan.so.1": "libvulkan1",
}
LIBC = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1", "libresolv.so.2", "libanl.so.1", "libmvec.so.1"}
VERSION_REF = re.compile(r"\((GLIBC|GLIBCXX|CXXABI)_([0-9.]+)\)")


def vkey(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def ldconfig_paths() -> dict[str, str]:
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    paths: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) \((libc6,x86-64|libc6,AArch64|[^)]*)\) => (\S+)", line)
        if m and ("x86-64" in m.group(2) or "AArch64" in m.group(2)):
            paths.setdefault(m.group(1), m.group(3))
    return paths


def dpkg_package(path: str) -> str | None:
    candidates = {path, str(Path(path).resolve())}
    candidates |= {c.removeprefix("/usr") for c in list(candidates)} | {"/usr" + c for c in list(candidates) if not c.startswith("/usr")}
    for c in sorted(candidates):
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True, check=False)
        if r.returncode == 0 and r.stdout:
            return r.stdout.split(":")[0].split(",")[0].strip()
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    elves = sorted(p for p in args.bundle.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p))
    carried = {p.name for p in args.bundle.rglob("*")}
    needed: dict[str, list[str]] = {}
    floors: dict[str, tuple[str, str]] = {}
    for elf in elves:
        rel = str(elf.relative_to(args.bundle))
        for line in objdump("-p", elf).splitlines():
            if line.strip().startswith("NEEDED"):
                needed.setdefault(line.split()[1], []).append(rel)
        for kind, ver in VERSION_REF.findall(objdump("-T", elf)):
            if kind not in floors or vkey(ver) > vkey(floors[kind][0]):
                floors[kind] = (ver, rel)
    system = {lib: users for lib, users in needed.items() if lib not in carried}
    where = ldconfig_paths()
    packages: dict[str, str] = {}
    unresolved = []
    for lib in sorted(system):
        if lib in LIBC:
            packages[lib] = "libc6"
            continue
        pkg = (dpkg_package(where[lib]) if lib in where else None) or KNOWN.get(lib)
        if pkg is None:
            unresolved.append(f"{lib} (needed by {system[lib][0]})")
        else:
            packages[lib] = pkg
    glibc = floors.get("GLIBC", ("2.17", ""))[0]
    depends = [f"libc6 (>= {glibc})"] + sorted({p for p in packages.values() if p != "libc6"})
    report = {
        "elf_files": len(elves),
        "glibc_floor": {"version": glibc, "set_by": floors.get("GLIBC", ("", ""))[1]},
        "glibcxx_floor": {"version": floors.get("GLIBCXX", ("", ""))[0], "set_by": floors.get("GLIBCXX", ("", ""))[1]},
        "system_libraries": {lib: {"package": packages.get(lib), "needed_by": users[:5]} for lib, users in sorted(system.items())},
        "depends": depends,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for u in unresolved:
        print(f"deb_depends: no Debian package known for {u}", file=sys.stderr)
    print(", ".join(depends))
    return 1 if unresolved else 0


if __name__ == "__main__":
    sys.exit(main())
