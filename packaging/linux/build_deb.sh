#!/usr/bin/env bash
# Build catsort_VERSION_ARCH.deb from the bundle packaging/build.sh made:
#   bash packaging/linux/build_deb.sh [BUNDLE]        (default: runs/pkg/dist/catsort)
# Layout: /usr/lib/catsort/ (the bundle), /usr/bin/catsort and /usr/bin/catsort-gui (wrappers), the
# .desktop entry, AppStream metainfo, hicolor icons, man pages, /usr/share/doc/catsort/{copyright,changelog.gz}
# and a lintian overrides file (each override says why). Depends is computed from the bundle's ELF files
# (deb_depends.py), so it names exactly the system libraries the frozen Qt and Python link to.
# Then it runs desktop-file-validate, appstreamcli validate --no-net and lintian (fails on any error).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${CATSORT_PKG_OUT:-$repo/runs/pkg}
bundle=${1:-$out/dist/catsort}
[ -x "$bundle/catsort" ] && [ -x "$bundle/catsort-gui" ] || { echo "no bundle at $bundle (run packaging/build.sh)"; exit 1; }
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$repo/catsort/__init__.py")
arch=$(dpkg --print-architecture)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 1767225600)}
export SOURCE_DATE_EPOCH
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
maintainer=${CATSORT_DEB_MAINTAINER:-"catsort maintainers <maintainers@users.noreply.b-seed-b8b1b636.example>"}
appid=io.github.catsort.catsort
work=$out/deb
root=$work/root
deb=$out/catsort_${version}_${arch}.deb
rm -rf "$work" "$deb"
mkdir -p "$root/DEBIAN" "$root/usr/lib" "$root/usr/bin" "$root/usr/share/applications" "$root/usr/share/metainfo" \
    "$root/usr/share/doc/catsort" "$root/usr/share/man/man1" "$root/usr/share/lintian/overrides" \
    "$root/usr/share/icons/hicolor/scalable/apps"

cp -a "$bundle" "$root/usr/lib/catsort"
for exe in catsort catsort-gui; do
    cat > "$root/usr/bin/$exe" <<EOF
#!/bin/sh
# Installed by the catsort .deb: the frozen app lives in /usr/lib/catsort/.
exec /usr/lib/catsort/$exe "\$@"
EOF
done
install -m 0644 "$here/$appid.desktop" "$root/usr/share/applications/$appid.desktop"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$date/" "$here/$appid.metainfo.xml" > "$root/usr/share/metainfo/$appid.metainfo.xml"
install -m 0644 "$repo/assets/icons/catsort.svg" "$root/usr/share/icons/hicolor/scalable/apps/catsort.svg"
for png in "$repo"/assets/icons/hicolor/*/apps/catsort.png; do
    size=$(basename "$(dirname "$(dirname "$png")")")
    install -D -m 0644 "$png" "$root/usr/share/icons/hicolor/$size/apps/catsort.png"
done
for page in catsort.1 catsort-gui.1; do
    sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$date/" "$here/$page" | gzip -9n > "$root/usr/share/man/man1/$page.gz"
done
install -m 0644 "$here/copyright" "$root/usr/share/doc/catsort/copyright"
printf 'catsort (%s) unstable; urgency=medium\n\n  * Packaged from the PyInstaller bundle of catsort %s.\n\n -- %s  %s\n' \
    "$version" "$version" "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" | gzip -9n > "$root/usr/share/doc/catsort/changelog.gz"
install -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/catsort"

# Policy permissions: directories and the two launchers + wrappers 0755, everything else 0644 (shared
# objects included: nothing runs them directly).
find "$root" -type d -exec chmod 0755 {} +
find "$root/usr" -type f -exec chmod 0644 {} +
chmod 0755 "$root/usr/bin/catsort" "$root/usr/bin/catsort-gui" "$root/usr/lib/catsort/catsort" "$root/usr/lib/catsort/catsort-gui"

depends=$(python3 "$here/deb_depends.py" "$root/usr/lib/catsort" --json "$work/elf-report.json")
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("== glibc floor:", r["glibc_floor"]["version"], "(set by", r["glibc_floor"]["set_by"] + "); GLIBCXX floor:", r["glibcxx_floor"]["version"], "(set by", r["glibcxx_floor"]["set_by"] + ")")' "$work/elf-report.json"
installed_kb=$(du -sk --apparent-size "$root/usr" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: catsort
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_kb
Depends: $depends
Section: graphics
Priority: optional
Homepage: https://github.com/catsort/catsort
Description: put cat photos in cats/ and dog photos in dogs/
 catsort looks at every photo in a folder and moves the cat photos into a
 cats/ folder and the dog photos into a dogs/ folder inside it; everything
 else stays where it is. A small neural network shipped with the app decides,
 on the computer's own processor. Every run is journaled in the folder and can
 be undone (catsort --undo PATH).
 .
 This package holds the window (catsort-gui) and the command line (catsort).
EOF
(cd "$root" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

echo "== dpkg-deb (xz)"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "== $deb: $(du -k "$deb" | cut -f1) KiB, installed $installed_kb KiB"
echo "Depends: $depends"

echo "== desktop-file-validate"
desktop-file-validate "$root/usr/share/applications/$appid.desktop"
echo "== appstreamcli validate --no-net"
appstreamcli validate --no-net "$root/usr/share/metainfo/$appid.metainfo.xml"
echo "== lintian"
set +e
lintian --info --display-info --tag-display-limit 0 "$deb" > "$work/lintian.txt" 2>&1
lintian_rc=$?
set -e
cat "$work/lintian.txt"
if grep -q '^E: ' "$work/lintian.txt"; then
    echo "lintian reports errors"; exit 1
fi
[ "$lintian_rc" -eq 0 ] || { echo "lintian exited $lintian_rc"; exit 1; }
echo "lintian: no errors ($(grep -c '^W: ' "$work/lintian.txt" || true) warnings, $(grep -c '^I: ' "$work/lintian.txt" || true) info)"
