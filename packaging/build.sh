#!/usr/bin/env bash
# Build the bundled app (needs a working install: it adds PyInstaller and installs catsort editable) into runs/dist/catsort/ and smoke-test the frozen binary headless on a sample folder.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q "pyinstaller==6.22.*" -e .
python -m PyInstaller --noconfirm --clean --distpath runs/dist --workpath runs/build packaging/catsort.spec
sample=$(mktemp -d)
python - "$sample" <<'PY'
import sys
from pathlib import Path
from PIL import Image
folder = Path(sys.argv[1])
Image.new("RGB", (640, 480), (90, 140, 200)).save(folder / "sky.jpg")
(folder / "broken.jpg").write_bytes(b"not a photo")
PY
set +e
runs/dist/catsort/catsort --headless "$sample" --dry-run --json > "$sample/summary.json"
code=$?
set -e
python -c "import json,sys; s=json.load(open(sys.argv[1])); assert s['files'] == 2 and s['failed'] == 1, s; print('frozen app OK:', s['files'], 'files,', s['failed'], 'unreadable')" "$sample/summary.json"
[ "$code" -eq 1 ] || { echo "expected exit code 1 (one unreadable file), got $code"; exit 1; }
du -sh runs/dist/catsort
