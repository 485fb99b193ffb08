"""Make the self-test sample images in assets/samples/ from scikit-image's bundled CC0 / public-domain photos.

Run once (the outputs are committed); needs Pillow, pillow-heif (to *encode* HEIC; the app only decodes,
with pi-heif) and either scikit-image installed or ``--from`` pointing at a ``skimage/data`` folder
(e.g. unzipped from the scikit-image wheel). Licences: docs/CREDITS.md. Afterwards run
``python packaging/record_samples.py`` to record what the model says about them.

    python packaging/make_samples.py [--from /path/to/skimage/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "assets" / "samples"
LONG_SIDE = 384

# source file in skimage/data -> (sample name, format, save options)
SAMPLES = {
    "chelsea.png": ("chelsea.jpg", "JPEG", {"quality": 88, "optimize": True}),  # a cat
    "coffee.png": ("coffee.heic", "HEIF", {"quality": 80}),  # a coffee cup: other
    "astronaut.png": ("astronaut.png", "PNG", {"optimize": True}),  # a person: other
}


def skimage_data_dir() -> Path:
    import skimage.data  # noqa: PLC0415 (optional, only for this one-off script)

    return Path(skimage.data.__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a skimage/data folder (default: the installed scikit-image's)")
    args = parser.parse_args()
    source = args.source or skimage_data_dir()
    from pillow_heif import register_heif_opener  # noqa: PLC0415 (encoder, not an app dependency)

    register_heif_opener()
    OUT.mkdir(parents=True, exist_ok=True)
    for src, (name, fmt, options) in SAMPLES.items():
        with Image.open(source / src) as img:
            img = img.convert("RGB")
            img.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
            if fmt == "PNG":
                # A full-colour 384 px photo is ~300 KB as PNG; 256 colours keep it under 100 KB (and
                # exercise the palette-image path of the decoder).
                img = img.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            img.save(OUT / name, fmt, **options)
        print(f"{OUT / name}: {img.size[0]}x{img.size[1]}, {(OUT / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
