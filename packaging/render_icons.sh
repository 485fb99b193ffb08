#!/usr/bin/env bash
# Render the hicolor PNG sizes of the app icon from its SVG source (ImageMagick): assets/icons/hicolor/NxN/apps/catsort.png.
# Run after editing assets/icons/catsort.svg; the PNGs are committed (the build does not need ImageMagick).
set -euo pipefail
cd "$(dirname "$0")/../assets/icons"
for n in 16 24 32 48 64 128 256 512; do
    mkdir -p "hicolor/${n}x${n}/apps"
    convert -background none -density $((72 * n / 256 + 1))x$((72 * n / 256 + 1)) catsort.svg \
        -resize "${n}x${n}" -strip -define png:exclude-chunks=date,time "hicolor/${n}x${n}/apps/catsort.png"
done
ls -l hicolor/*/apps/catsort.png
