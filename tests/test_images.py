"""Every awkward kind of file a photo folder holds: decoded upright, or refused with one readable line."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import BLUE, GREEN, RED, photo, shared
from PIL import Image, ImageOps

from catsort import images
from catsort.images import JPEG_MAX_PIXELS_PER_BYTE, ImageError, View, is_image_name, load_image, load_views, open_image, to_model_input

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


def test_predict_keeps_a_known_verdict_only_while_its_photo_is_unchanged(tmp_path: Path, colour_model: Path) -> None:
    """The verdicts of an earlier scan, in folder order: a photo edited since, or whose verdict was an error, is decoded again."""
    import os

    from catsort.model import Classifier, ModelCard
    from catsort.predict import predict, scan_folder

    paths = _album_with_bad_files(tmp_path, 9)
    classifier = Classifier(ModelCard.load(colour_model))
    first = list(predict(scan_folder(tmp_path), classifier))
    st = os.stat(paths[1])
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # touched: same bytes, another modification time
    again = list(predict(scan_folder(tmp_path), classifier, known={p.path: p for p in first}))
    assert [p.path for p in again] == [p.path for p in first] == paths
    assert [a is f for a, f in zip(again, first, strict=True)] == [i not in (1, 3) for i in range(9)]
    assert again[1].fingerprint != first[1].fingerprint and again[1].probabilities == first[1].probabilities


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
    ({"name": "pixels", "size": 48, "resize": "centre", "below": 0.9}, r"feeds colour.onnx uint8\[n, 48, 48, 3\], but its graph takes uint8\[\?, 32, 32, 3\]"),
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


@pytest.mark.parametrize("change, error", [
    (lambda card: card["input"]["views"][0].update(size=0), "input 'pixels' is 0 px; a view is 16 to 2048 px"),
    (lambda card: card["input"]["views"][0].update(size=-5), "input 'pixels' is -5 px"),
    (lambda card: card.update(labels=["cat", "dog", "other", "cat"]), "labels must be cat, dog and other"),
    (lambda card: card.update(labels=["cat", "dog", 1]), "labels must be cat, dog and other"),
], ids=["size 0", "size -5", "four labels", "a number for a label"])
def test_a_card_that_no_model_could_have_is_refused_in_one_line(tmp_path: Path, colour_model: Path, change, error: str) -> None:
    """A view of 0 px was once taken, and every photo then failed with "unexpected decoder error: ZeroDivisionError"."""
    import json

    from catsort.errors import ModelError
    from catsort.model import ModelCard

    card = json.loads(colour_model.read_text())
    change(card)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match=error) as caught:
        ModelCard.load(path)
    assert "\n" not in str(caught.value)


def _pillow_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [f"{w.category.__name__}: {w.message}" for w in caught if "PIL" in w.filename or issubclass(w.category, Image.DecompressionBombWarning)]


def test_a_200_megapixel_jpeg_is_judged_by_the_size_it_decodes_at(tmp_path: Path) -> None:
    """Samsung's 200 MP mode (16320 x 12240): over the safety limit as declared, ~3 MP once drafted to 1/8."""
    Image.new("RGB", (16320, 12240), RED).save(tmp_path / "200mp.jpg", quality=80)  # ~0.6 s, ~0.8 GB while saving
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        img = open_image(tmp_path / "200mp.jpg", 240)
        pixels = to_model_input(img, 240, "centre")
    assert img.size == (16320 // 8, 12240 // 8) and dominant(pixels) == 0
    assert not _pillow_warnings(caught)


def test_the_pixel_limit_applies_to_a_jpeg_after_draft_and_to_other_formats_as_declared(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 5_000_000)
    picture = photo(RED, (4000, 3000))  # 12 MP: a JPEG decodes at 1/8 of that for a 32 px view
    picture.save(tmp_path / "big.jpg", quality=85)
    picture.save(tmp_path / "big.png", compress_level=1)
    assert dominant(load_image(tmp_path / "big.jpg", SIZE)) == 0
    with pytest.raises(ImageError, match="^image is larger than the 5 megapixel safety limit$"):
        load_image(tmp_path / "big.png", SIZE)


@pytest.mark.parametrize("width, height", [(60_000, 60_000), (16_320, 12_240)])
def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path: Path, width: int, height: int) -> None:
    """A few hundred bytes declaring 3.6 gigapixels (or 200 MP, as a PNG, which has no draft) is refused, not decoded."""
    _png_header_only(tmp_path / "bomb.png", width, height)
    with pytest.raises(ImageError) as err:
        load_views(tmp_path / "bomb.png", [View("pixels", 1600, "centre")])
    assert str(err.value) == "image is larger than the 178 megapixel safety limit"


@pytest.mark.parametrize("shrink", [True, False], ids=["shrunk", "full-size"])
def test_no_pillow_warning_reaches_stderr_for_a_big_image_that_is_accepted(tmp_path: Path, monkeypatch, shrink: bool) -> None:
    """The centre crop of a 10000 x 9500 photo is over Pillow's warning limit; nothing is printed for it."""
    if not shrink:  # the crop then runs on the whole image, as it did before images were shrunk
        monkeypatch.setattr(images, "SHRINK_ABOVE", 10**12)
    grey = np.full((9500, 10000), 128, dtype=np.uint8)
    grey[:, 5000:] = 200
    Image.fromarray(grey).save(tmp_path / "grey.png", compress_level=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        centre, squash = load_views(tmp_path / "grey.png", [View("pixels", 240, "centre"), View("squash", 32, "squash")])
    assert centre.shape == (240, 240, 3) and squash.shape == (32, 32, 3)
    assert not _pillow_warnings(caught)


def _quadrants(width: int, height: int) -> np.ndarray:
    """RGBA: a transparent top-left quarter, a half-transparent blue top-right, opaque red below."""
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[height // 2:] = (*RED, 255)
    rgba[: height // 2, width // 2:] = (*BLUE, 128)
    return rgba


def test_a_huge_rgba_image_is_shrunk_before_it_is_flattened_onto_white(tmp_path: Path) -> None:
    """8000 x 6400 (51 MP, over SHRINK_ABOVE): shrunk first, not copied at full size five times."""
    Image.fromarray(_quadrants(8000, 6400), "RGBA").save(tmp_path / "huge.png", compress_level=1)
    img = open_image(tmp_path / "huge.png", 240)
    assert img.mode == "RGB" and min(img.size) >= 2 * 240 and img.width < 8000
    px = np.asarray(img)
    h, w = px.shape[:2]
    assert (px[: h // 4, : w // 4] == 255).all(), "transparent is white"
    assert (px[3 * h // 4:, : w // 4] == RED).all()
    assert np.abs(px[h // 8, 7 * w // 8].astype(int) - [147, 147, 227]).max() <= 2, "half-transparent blue on white"


def _sixteen_bit(width: int, height: int) -> Image.Image:
    return Image.fromarray(np.tile(np.linspace(0, 65535, width, dtype=np.uint16), (height, 1)))


def _dark_sixteen_bit(width: int, height: int) -> Image.Image:
    return Image.fromarray(np.tile(np.linspace(0, 250, width).astype(np.uint16), (height, 1)))


def _palette(width: int, height: int) -> Image.Image:
    """The quadrants as palette indices 0 (the transparent colour when saved so), 1 (blue) and 2 (red)."""
    rgba = _quadrants(width, height)
    index = (rgba[..., 2] == BLUE[2]) + 2 * (rgba[..., 0] == RED[0])
    img = Image.frombytes("P", (width, height), index.astype(np.uint8).tobytes())
    img.putpalette([0, 0, 0, *BLUE, *RED])
    return img


def _asymmetric(width: int, height: int) -> Image.Image:
    """The quadrants on black, opaque: every turn and flip of it looks different."""
    return Image.fromarray(_quadrants(width, height)[..., :3])


_SHRUNK_CASES = [
    ("rgba.png", lambda w, h: Image.fromarray(_quadrants(w, h), "RGBA"), {}),
    ("la.png", lambda w, h: Image.fromarray(_quadrants(w, h), "RGBA").convert("LA"), {}),
    ("deep.png", _sixteen_bit, {}),
    ("dark16.png", _dark_sixteen_bit, {}),  # still 16-bit once shrunk: nearly black, not stretched to white
    ("palette.png", _palette, {"transparency": 0}),
    ("palette.gif", _palette, {}),
    ("keyed.png", lambda w, h: _asymmetric(w, h).convert("L"), {"transparency": 0}),
    ("bits.png", lambda w, h: Image.fromarray(_quadrants(w, h)[..., 0] > 100), {}),
    ("print.tif", lambda w, h: photo(RED, (w, h)).convert("CMYK"), {}),
    ("turned.png", _asymmetric, {"exif": {0x0112: 6}}),
    ("turned.tif", _asymmetric, {"exif": {0x0112: 8}}),
]


@pytest.mark.parametrize("name, make, save", _SHRUNK_CASES, ids=[case[0] for case in _SHRUNK_CASES])
def test_a_shrunk_image_looks_like_the_full_size_one(tmp_path: Path, monkeypatch, name: str, make, save: dict) -> None:
    """Each mode a shrink converts specially, shrunk (threshold lowered) against decoded whole."""
    path = tmp_path / name
    image = make(600, 400)
    if "exif" in save:
        exif = Image.Exif()
        exif.update(save["exif"])
        save = {"exif": exif}
    image.save(path, **save)
    whole = images.open_image(path, 32)
    monkeypatch.setattr(images, "SHRINK_ABOVE", 100_000)
    monkeypatch.setattr(images, "_SMALLEST_SHRUNK_SIDE", 64)
    shrunk = images.open_image(path, 32)
    assert shrunk.mode == "RGB" and shrunk.size < whole.size and min(shrunk.size) >= 2 * 32
    for view in (View("pixels", 48, "squash"), View("centre", 48, "centre")):
        got, want = (to_model_input(img, view.size, view.resize).astype(int) for img in (shrunk, whole))
        assert np.abs(got - want).mean() < 3, (view, np.abs(got - want).mean())


def test_a_huge_turned_image_is_turned_once_shrunk(tmp_path: Path, monkeypatch) -> None:
    """Turning first copied the whole decoded image: only the shrunk one may be turned."""
    exif = Image.Exif()
    exif[0x0112] = 6
    _asymmetric(600, 400).save(tmp_path / "turned.png", exif=exif)
    monkeypatch.setattr(images, "SHRINK_ABOVE", 100_000)
    monkeypatch.setattr(images, "_SMALLEST_SHRUNK_SIDE", 64)
    turned: list[tuple[int, int]] = []
    transpose = ImageOps.exif_transpose

    def recording(img: Image.Image, **kwargs) -> Image.Image | None:
        turned.append(img.size)
        return transpose(img, **kwargs)

    monkeypatch.setattr(ImageOps, "exif_transpose", recording)
    img = images.open_image(tmp_path / "turned.png", 32)
    assert turned and max(turned) < (600, 400), turned
    assert img.height > img.width, "upright: the 600 x 400 picture stored turned reads 400 wide"


def _decoded_as_before(path: Path, min_side: int) -> Image.Image:
    """open_image as it was before huge images were shrunk and sizes checked here: the reference."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft(None, (min_side, min_side))
        img.load()
        return images._to_rgb(ImageOps.exif_transpose(img))


_ORDINARY_CASES = [
    ("photo.jpg", lambda: photo(RED, (1200, 900))),
    ("rgba.png", lambda: Image.fromarray(_quadrants(640, 480), "RGBA")),
    ("deep.png", lambda: _sixteen_bit(640, 480)),
    ("palette.png", lambda: _palette(640, 480)),
    ("scan.tif", lambda: photo(BLUE, (800, 600)).convert("CMYK")),
]


@pytest.mark.parametrize("name, make", _ORDINARY_CASES, ids=[case[0] for case in _ORDINARY_CASES])
def test_an_ordinary_photo_decodes_exactly_as_before(tmp_path: Path, monkeypatch, name: str, make) -> None:
    def no_shrink(img: Image.Image, factor: int) -> Image.Image:
        raise AssertionError("an ordinary photo was shrunk")

    monkeypatch.setattr(images, "_shrink", no_shrink)
    path = tmp_path / name
    exif = Image.Exif()
    exif[0x0112] = 8  # turned: exif_transpose's copy is part of what must not change
    make().save(path, **({} if name.endswith(".gif") else {"exif": exif}))
    for min_side in (32, 240, 1600):
        got, want = open_image(path, min_side), _decoded_as_before(path, min_side)
        assert (got.mode, got.size, got.tobytes()) == (want.mode, want.size, want.tobytes())
        for view in (View("pixels", 240, "centre"), View("squash", 224, "squash")):
            assert np.array_equal(to_model_input(got, view.size, view.resize), to_model_input(want, view.size, view.resize))


def test_only_images_far_larger_than_any_photo_are_shrunk() -> None:
    """50 MP decoded is kept whole, whatever is asked for; one row more is shrunk, to twice the side asked for
    (or 512 px, the thumbnails' need, if more)."""
    assert images._shrink_factor((8000, 6250), 32) == 1
    assert images._shrink_factor((8000, 6251), 300) == 6251 // 600
    assert images._shrink_factor((8000, 6251), 32) == 6251 // 512
    assert images._shrink_factor((16320, 12240), 1600) == 12240 // 3200
    assert images._shrink_factor((9000, 6000), 4000) == 1


def test_a_jpeg_cut_short_anywhere_reads_as_truncated(tmp_path: Path) -> None:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(buf, "JPEG")
    for cut in (200, len(buf.getvalue()) // 2):  # inside the headers ("Truncated File Read"), inside the pixels
        path = tmp_path / f"cut_{cut}.jpg"
        path.write_bytes(buf.getvalue()[:cut])
        with pytest.raises(ImageError, match=r"^corrupt image: image data is truncated \(file cut short\)$"):
            open_image(path, 240)


def test_a_photo_replaced_by_a_folder_is_a_read_error_not_a_corrupt_image(tmp_path: Path) -> None:
    (tmp_path / "IMG_0001.jpg").mkdir()
    with pytest.raises(ImageError, match=r"^cannot read file: Is a directory$"):
        open_image(tmp_path / "IMG_0001.jpg", 240)


def test_an_mpo_phone_photo_decodes_as_the_same_picture_saved_as_jpeg(tmp_path: Path) -> None:
    """MPO (a JPEG with a second picture appended) is drafted like a JPEG: same pixels, at the small size."""
    first, depth = photo(RED, size=(4000, 3000), seed=1), photo(BLUE, size=(4000, 3000), seed=2)
    first.save(tmp_path / "phone.jpg", format="MPO", save_all=True, append_images=[depth], quality=90)
    first.save(tmp_path / "plain.jpg", format="JPEG", quality=90)
    with Image.open(tmp_path / "phone.jpg") as img:
        assert img.format == "MPO"
    mpo, jpeg = open_image(tmp_path / "phone.jpg", 240), open_image(tmp_path / "plain.jpg", 240)
    assert mpo.size == jpeg.size and min(mpo.size) < 3000 // 4, "drafted, not decoded at 12 MP"
    assert np.array_equal(np.asarray(mpo), np.asarray(jpeg))


def _declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header (SOF0) changed to declare ``width`` x ``height``: its data stays that of the small picture."""
    at = jpeg.index(b"\xff\xc0") + 5
    return jpeg[:at] + struct.pack(">HH", height, width) + jpeg[at + 4:]


@pytest.mark.parametrize("width, height", [(65_000, 65_000), (4_000, 3_000), (1_500, 1_000)])
def test_a_jpeg_too_small_for_the_size_it_declares_is_corrupt_not_a_grey_photo(tmp_path: Path, width: int, height: int) -> None:
    """A 64 x 64 picture's few hundred bytes under a header declaring 4.2 gigapixels (or 12 MP): the
    decoder would fill the rest with grey and no error; it is reported corrupt instead."""
    photo(RED, (64, 64)).save(tmp_path / "small.jpg", quality=90)
    data = _declaring((tmp_path / "small.jpg").read_bytes(), width, height)
    (tmp_path / "claims.jpg").write_bytes(data)
    with pytest.raises(ImageError) as err:
        open_image(tmp_path / "claims.jpg", 240)
    assert str(err.value) == f"corrupt image: it declares {width} x {height} pixels but holds only {len(data):,} bytes"


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_the_flattest_jpeg_a_camera_could_save_is_not_taken_for_corrupt(tmp_path: Path, mode: str) -> None:
    """One flat colour over 12 MP, saved optimised and progressive: the most pixels per byte a real JPEG has."""
    Image.new(mode, (4000, 3000), 128 if mode == "L" else RED).save(tmp_path / "flat.jpg", optimize=True, progressive=True)
    assert open_image(tmp_path / "flat.jpg", 240).size == (500, 375)


def test_a_flat_arithmetic_coded_jpeg_is_a_photo_not_too_small_for_its_size() -> None:
    """A grey 12 MP picture in 125 bytes (``jpegtran -arithmetic`` of a Pillow JPEG): arithmetic coding spends
    less than a bit on a flat block, so the pixels-per-byte rule, which holds for Huffman coding, does not apply."""
    path = Path(__file__).parent / "data" / "flat_grey_4000x3000_arithmetic.jpg"
    assert path.stat().st_size * JPEG_MAX_PIXELS_PER_BYTE < 4000 * 3000
    img = open_image(path, 240)
    assert img.size == (500, 375) and np.asarray(img).std() == 0
