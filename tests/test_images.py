"""Every awkward kind of file a photo folder holds: decoded upright, or refused with one readable line."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import BLUE, GREEN, RED, photo, shared
from PIL import Image

from catsort.images import ImageError, View, is_image_name, load_image, load_views

SIZE = 32


def dominant(pixels: np.ndarray) -> int:
    return int(pixels.reshape(-1, 3).mean(axis=0).argmax())


@pytest.mark.parametrize(
    "name, save",
    [
        ("plain.jpg", lambda im, p: im.save(p, quality=90)),
        ("UPPER.JPEG", lambda im, p: im.save(p, "JPEG")),
        ("grey.jpg", lambda im, p: im.convert("L").save(p)),
        ("print.jpg", lambda im, p: im.convert("CMYK").save(p, "JPEG")),
        ("scan.tif", lambda im, p: im.save(p)),
        ("old.bmp", lambda im, p: im.save(p)),
        # The app reads HEIF with decode-only pi-heif; pillow-heif (a test dependency) writes it.
        ("phone.heic", lambda im, p: __import__("pillow_heif").from_pillow(im).save(p)),
        ("web.webp", lambda im, p: im.save(p)),
        ("café 猫 фото.jpg", lambda im, p: im.save(p)),
        ("x" * 240 + ".jpg", lambda im, p: im.save(p)),
    ],
)
def test_formats_decode_to_model_input(tmp_path: Path, name: str, save) -> None:
    path = tmp_path / name
    save(photo(RED), path)
    pixels = load_image(path, SIZE)
    assert pixels.shape == (SIZE, SIZE, 3) and pixels.dtype == np.uint8
    if not name.startswith("grey"):
        assert dominant(pixels) == 0


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (48, 1))
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    pixels = load_image(tmp_path / "deep.png", SIZE)
    row = pixels[SIZE // 2, :, 0].astype(int)
    assert row[0] < 20 and row[-1] > 235 and np.all(np.diff(row) >= 0)


def test_transparency_is_flattened_onto_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    rgba.save(tmp_path / "clear.png")
    palette = photo(BLUE, (40, 40)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.info["transparency"] = list(range(8))[0]
    palette.save(tmp_path / "palette.png", transparency=0)
    assert load_image(tmp_path / "clear.png", SIZE).min() == 255
    assert load_image(tmp_path / "palette.png", SIZE).shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animation_uses_first_frame(tmp_path: Path, suffix: str) -> None:
    frames = [photo(RED, (60, 40)), photo(BLUE, (60, 40), seed=1)]
    frames[0].save(tmp_path / f"anim{suffix}", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert dominant(load_image(tmp_path / f"anim{suffix}", SIZE)) == 0


_UNDO_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_upright_picture(tmp_path: Path, orientation: int) -> None:
    upright = np.zeros((48, 64, 3), dtype=np.uint8)
    upright[:24, :32] = RED  # top-left red, bottom-right blue: every flip and turn looks different
    upright[24:, 32:] = BLUE
    upright_img = Image.fromarray(upright)
    stored = upright_img if orientation == 1 else upright_img.transpose(_UNDO_ORIENTATION[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "o.jpg", exif=exif, quality=95)
    got = load_image(tmp_path / "o.jpg", SIZE).astype(int)
    want = np.asarray(upright_img.resize((SIZE, SIZE))).astype(int)
    assert np.abs(got - want).mean() < 12


def test_views_squash_the_whole_photo_and_crop_its_centre_square(tmp_path: Path) -> None:
    wide = np.zeros((60, 120, 3), dtype=np.uint8)
    wide[:, :30], wide[:, 30:90], wide[:, 90:] = RED, GREEN, BLUE  # a green square between red and blue bands
    Image.fromarray(wide).save(tmp_path / "wide.png")
    squash, centre = load_views(tmp_path / "wide.png", [View("pixels", SIZE, "squash"), View("centre", 16, "centre")])
    assert squash.shape == (SIZE, SIZE, 3) and centre.shape == (16, 16, 3)
    assert [dominant(squash[:, :4]), dominant(squash[:, SIZE // 2 - 2 : SIZE // 2 + 2]), dominant(squash[:, -4:])] == [0, 1, 2]
    assert (centre == GREEN).all()


def _png_header_only(path: Path, width: int, height: int) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def test_bad_files_give_one_line_reasons(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("this is not a photo\n")
    photo(RED, (800, 600)).save(tmp_path / "whole.jpg", quality=95)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    _png_header_only(tmp_path / "bomb.png", 30_000, 30_000)
    expected = {
        "empty.jpg": "empty file",
        "notes.jpg": "not a readable image",
        "cut.jpg": "truncated",
        "bomb.png": "megapixel",
    }
    for name, words in expected.items():
        with pytest.raises(ImageError) as err:
            load_image(tmp_path / name, SIZE)
        message = str(err.value)
        assert words in message and "\n" not in message, (name, message)


def test_missing_file_is_an_error_value(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read file"):
        load_image(tmp_path / "gone.jpg", SIZE)


def test_image_names() -> None:
    assert is_image_name(Path("a.JPG")) and is_image_name(Path("b.heic")) and is_image_name(Path("c.Tiff"))
    assert not is_image_name(Path("clip.mp4")) and not is_image_name(Path("notes.txt"))


def test_real_photos_decode() -> None:
    folder = shared("real/cat")
    for path in sorted(folder.glob("*.jpg"))[:5]:
        assert load_image(path, 224).shape == (224, 224, 3)


def test_heif_is_taught_to_pillow_on_first_need_even_under_another_name(tmp_path: Path) -> None:
    """Start-up does not pay for pi_heif; a HEIC photo (even one named .jpg) still decodes."""
    import shutil
    import subprocess
    import sys

    heic = Path(__file__).resolve().parent.parent / "assets" / "samples" / "coffee.heic"
    if not heic.exists():
        pytest.skip("no HEIC sample")
    shutil.copy(heic, tmp_path / "IMG_0001.jpg")
    code = (
        "import sys; from pathlib import Path; import catsort.cli; from catsort.images import open_image\n"
        "assert 'pi_heif' not in sys.modules, 'imported at start-up'\n"
        f"img = open_image(Path({str(tmp_path / 'IMG_0001.jpg')!r}), 64)\n"
        "assert min(img.size) >= 64 and 'pi_heif' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _album_with_bad_files(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"f{i:03d}.jpg"
        if i % 7 == 3:
            p.write_bytes(b"not a jpeg at all")
        else:
            photo((RED, BLUE, GREEN)[i % 3], size=(64, 48), seed=i).save(p, quality=85)
        paths.append(p)
    return paths


@pytest.mark.parametrize("jobs, batch", [(1, 8), (3, 2), (2, 5)])
def test_classify_keeps_input_order_across_batches_and_workers(tmp_path: Path, colour_model: Path, jobs: int, batch: int) -> None:
    from catsort.classify import BackgroundClassifier, classify_files
    from catsort.model import ModelCard

    paths = _album_with_bad_files(tmp_path, 30)
    preds = list(classify_files(paths, BackgroundClassifier(ModelCard.load(colour_model), threads=1), jobs, batch_size=batch))
    assert [p.path for p in preds] == paths
    for i, p in enumerate(preds):
        if i % 7 == 3:
            assert p.probabilities is None and "not a readable image" in p.error
        else:
            assert p.error is None and max(range(3), key=lambda k: p.probabilities[k]) == i % 3 and p.fingerprint is not None


def test_classify_stops_soon_after_a_cancel(tmp_path: Path, colour_model: Path) -> None:
    import threading

    from catsort.classify import classify_files
    from catsort.model import Classifier, ModelCard

    paths = _album_with_bad_files(tmp_path, 40)
    cancel = threading.Event()
    seen = []
    for p in classify_files(paths, Classifier(ModelCard.load(colour_model)), 2, batch_size=2, cancel=cancel):
        seen.append(p)
        if len(seen) == 3:
            cancel.set()
    assert len(seen) == 3


def test_a_model_that_fails_to_load_in_the_background_raises_its_error(tmp_path: Path, colour_model: Path) -> None:
    import json

    from catsort.classify import BackgroundClassifier, classify_files
    from catsort.errors import ModelError
    from catsort.model import ModelCard

    card = json.loads(colour_model.read_text())
    card["onnx"]["sha256"] = "0" * 64
    bad = tmp_path / "bad.json"
    (tmp_path / "colour.onnx").write_bytes(colour_model.with_suffix(".onnx").read_bytes())
    bad.write_text(json.dumps(card))
    paths = _album_with_bad_files(tmp_path / "pics", 4)
    with pytest.raises(ModelError, match="does not match its card"):
        list(classify_files(paths, BackgroundClassifier(ModelCard.load(bad))))


@pytest.mark.parametrize("look, error", [
    ({"name": "pixels", "size": 48, "resize": "centre", "below": 0.9}, "its input is fixed at 32 px"),
    ({"name": "other", "size": 32, "resize": "centre", "below": 0.9}, "names that view's input"),
    ({"name": "pixels", "size": 48, "resize": "fisheye", "below": 0.9}, "unsupported resize mode 'fisheye'"),
])
def test_a_second_look_the_model_cannot_take_is_refused_in_one_line(tmp_path: Path, colour_model: Path, look: dict, error: str) -> None:
    import json

    from catsort.errors import ModelError
    from catsort.model import Classifier, ModelCard

    card = json.loads(colour_model.read_text())
    card["input"]["second_look"] = look
    (tmp_path / "colour.onnx").write_bytes(colour_model.with_suffix(".onnx").read_bytes())
    path = tmp_path / "look.json"
    path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match=error) as caught:
        Classifier(ModelCard.load(path))
    assert "\n" not in str(caught.value)
