"""A card that does not fit its graph is refused in one line when the model loads, not met as an
onnxruntime traceback at the first batch; so is a card whose calibration is out of range, and an
onnxruntime failure while running is a one-line ModelError too."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from catsort.checksum import file_sha256
from catsort.errors import ModelError
from catsort.model import Classifier, ModelCard


def _tampered(card_path: Path, folder: Path, change: Callable[[dict], None]) -> Path:
    """A copy of a card and its ONNX file in ``folder``, the card's JSON changed by ``change``."""
    card = json.loads(card_path.read_text(encoding="utf-8"))
    onnx_file = card_path.parent / card["onnx"]["file"]
    change(card)
    shutil.copy(onnx_file, folder / onnx_file.name)
    out = folder / card_path.name
    out.write_text(json.dumps(card), encoding="utf-8")
    return out


def _view_size(size: int) -> Callable[[dict], None]:
    def change(card: dict) -> None:
        card["input"]["views"][0]["size"] = size

    return change


def _refused(card_path: Path) -> str:
    with pytest.raises(ModelError) as caught:
        Classifier(ModelCard.load(card_path), threads=1)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_card_whose_view_the_shipped_graph_does_not_take_is_refused_in_one_line(tmp_path: Path) -> None:
    """QA's case: the shipped card's view set to 300 px while its graph is fixed at 240. The graph is fixed
    here, as v4's was; a graph of free size takes a view of any size (see below)."""
    import onnx

    model = onnx.load(str(REPO / "assets" / "catsort.onnx"))
    for dim in model.graph.input[0].type.tensor_type.shape.dim[1:3]:
        dim.dim_value = 240
    onnx.save(model, str(tmp_path / "catsort.onnx"))
    card = json.loads((REPO / "assets" / "model.json").read_text(encoding="utf-8"))
    card["onnx"]["sha256"] = file_sha256(tmp_path / "catsort.onnx")
    card["input"]["views"][0]["size"] = 300
    card["input"].pop("second_look", None)
    (tmp_path / "model.json").write_text(json.dumps(card), encoding="utf-8")
    assert _refused(tmp_path / "model.json") == (f"{tmp_path / 'model.json'}: the card's view 'pixels' feeds catsort.onnx "
                                                 "uint8[n, 300, 300, 3], but its graph takes uint8[batch, 240, 240, 3]")


def test_a_card_whose_view_its_graph_does_not_take_is_refused(tmp_path: Path, colour_model: Path) -> None:
    card = _tampered(colour_model, tmp_path, _view_size(48))
    assert "feeds colour.onnx uint8[n, 48, 48, 3], but its graph takes uint8[?, 32, 32, 3]" in _refused(card)


def _colour_variant(colour_model: Path, folder: Path, edit: Callable, size: int = 32) -> Path:
    """The colour model with its input's type edited by ``edit(tensor_type)``, and a card for it (views of ``size``)."""
    import onnx

    model = onnx.load(str(colour_model.with_suffix(".onnx")))
    edit(model.graph.input[0].type.tensor_type)
    onnx.save(model, str(folder / "colour.onnx"))
    card = json.loads(colour_model.read_text(encoding="utf-8"))
    card["onnx"]["sha256"] = file_sha256(folder / "colour.onnx")
    card["input"]["views"][0]["size"] = size
    (folder / "colour.json").write_text(json.dumps(card), encoding="utf-8")
    return folder / "colour.json"


def _free_sides(tensor_type) -> None:
    tensor_type.shape.dim[1].dim_param = "height"
    tensor_type.shape.dim[2].dim_param = "width"


def _float_input(tensor_type) -> None:
    import onnx

    tensor_type.elem_type = onnx.TensorProto.FLOAT  # the graph's first node casts to float: it still loads


def _one_photo_a_batch(tensor_type) -> None:
    tensor_type.shape.dim[0].dim_value = 1


def test_a_graph_of_free_size_takes_a_view_of_any_size(tmp_path: Path, colour_model: Path) -> None:
    card = ModelCard.load(_colour_variant(colour_model, tmp_path, _free_sides, size=48))
    pixels = np.zeros((2, 48, 48, 3), dtype=np.uint8)
    pixels[..., 0] = 200
    logits = Classifier(card, threads=1).logits({"pixels": pixels})
    assert logits.shape == (2, 3) and (logits.argmax(axis=1) == 0).all()


@pytest.mark.parametrize("edit, takes", [
    (_float_input, "its graph takes float[?, 32, 32, 3]"),
    (_one_photo_a_batch, "its graph takes uint8[1, 32, 32, 3]"),
], ids=["float-pixels", "batch-of-one"])
def test_a_graph_that_takes_other_batches_than_catsort_feeds_is_refused(tmp_path: Path, colour_model: Path, edit: Callable,
                                                                        takes: str) -> None:
    card = _colour_variant(colour_model, tmp_path, edit)
    message = _refused(card)
    assert message.startswith(f"{card}: the card's view 'pixels' feeds colour.onnx uint8[n, 32, 32, 3]") and takes in message


@pytest.mark.parametrize("field, value, error", [
    ("threshold", 5, "threshold must be a probability in (0, 1], got 5.0"),
    ("threshold", 0, "threshold must be a probability in (0, 1], got 0.0"),
    ("threshold", -0.2, "threshold must be a probability in (0, 1], got -0.2"),
    ("threshold", float("nan"), "threshold must be a probability in (0, 1], got nan"),
    ("temperature", 0, "temperature must be positive, got 0.0"),
    ("temperature", -1.5, "temperature must be positive, got -1.5"),
    ("temperature", float("inf"), "temperature must be positive, got inf"),
], ids=["threshold-5", "threshold-0", "threshold-negative", "threshold-nan", "temperature-0", "temperature-negative",
        "temperature-inf"])
def test_a_card_whose_calibration_is_out_of_range_is_refused_in_one_line(tmp_path: Path, colour_model: Path, field: str,
                                                                         value: float, error: str) -> None:
    def change(card: dict) -> None:
        card["calibration"][field] = value

    card = _tampered(colour_model, tmp_path, change)
    with pytest.raises(ModelError) as caught:
        ModelCard.load(card)
    assert str(caught.value) == f"{card}: {error}"


def test_the_shipped_card_and_a_threshold_of_one_are_accepted(tmp_path: Path, colour_model: Path) -> None:
    def change(card: dict) -> None:
        card["calibration"]["threshold"] = 1

    assert ModelCard.load(_tampered(colour_model, tmp_path, change)).threshold == 1.0
    ModelCard.load(REPO / "assets" / "model.json")


def test_an_onnxruntime_failure_while_running_is_a_one_line_model_error(colour_model: Path) -> None:
    classifier = Classifier(ModelCard.load(colour_model), threads=1)
    with pytest.raises(ModelError) as caught:
        classifier.logits({"pixels": np.zeros((2, 40, 40, 3), dtype=np.uint8)})
    message = str(caught.value)
    assert message.startswith(f"{colour_model.with_suffix('.onnx')}: onnxruntime failed running it: ") and "\n" not in message
    assert "pixels" in message


def test_only_the_photos_the_first_look_leaves_unsure_are_fitted_to_the_second_look(tmp_path: Path) -> None:
    """The shipped card has a second look: it must ask for exactly the unsure photos' second view, and decide
    as it does when every photo comes already fitted to both views."""
    from PIL import Image

    from catsort.images import fit_views, open_image
    from catsort.model import needs_second_look, shipped_card_path

    card = ModelCard.load(shipped_card_path())
    if card.second_look is None:
        pytest.skip("the shipped model has no second look")
    side = max(v.size for v in card.decoded_views)
    cat = open_image(REPO / "assets" / "samples" / "chelsea.jpg", side)
    other = open_image(REPO / "assets" / "samples" / "astronaut.png", side).resize(cat.size)
    # A cat fading into a non-pet in fine steps: somewhere along the way the model changes its mind.
    images = [Image.blend(cat, other, float(a)) for a in np.linspace(0.0, 1.0, 41)]
    both = [fit_views(img, card.decoded_views) for img in images]
    clf = Classifier(card, threads=1)
    first = clf.logits({card.views[0].name: np.stack([b[0] for b in both])})
    unsure = np.flatnonzero(needs_second_look(first, card.temperature, card.second_look, card.labels.index("other"))).tolist()
    assert 0 < len(unsure) < len(images), "the photos should include sure and unsure ones"
    asked: list[int] = []

    def second_view(i: int) -> np.ndarray:
        asked.append(i)
        return both[i][-1]

    lazily = clf.looked_logits([b[: len(card.views)] for b in both], second_view)
    assert asked == unsure
    np.testing.assert_array_equal(lazily, clf.looked_logits(both))


def test_a_batch_keeps_small_decodes_for_the_second_look_and_fits_big_ones_at_once() -> None:
    """Memory stays flat: a whole-decoded 12 MP PNG or HEIC is not held by its batch for a second look it may never need."""
    from PIL import Image

    from catsort.classify import KEEP_DECODES_UP_TO, _for_second_look
    from catsort.images import to_model_input
    from catsort.model import shipped_card_path

    card = ModelCard.load(shipped_card_path())
    if card.second_look is None:
        pytest.skip("the shipped model has no second look")
    view = card.second_look.view
    small = Image.new("RGB", (800, 600), (200, 40, 40))
    big = Image.effect_noise((1500, 1000), 40).convert("RGB")
    assert small.width * small.height <= KEEP_DECODES_UP_TO < big.width * big.height
    assert _for_second_look(small, card) is small
    kept = _for_second_look(big, card)
    assert isinstance(kept, np.ndarray) and np.array_equal(kept, to_model_input(big, view.size, view.resize))


def test_the_second_look_gate_lets_through_unsure_photos_a_pet_could_be_in() -> None:
    """``below`` bounds the top probability and ``pets_from`` the pet probability (cat plus dog), whatever
    column "other" is in; a card without ``pets_from`` (model v5's) looks again wherever unsure."""
    from catsort.images import View
    from catsort.model import SecondLook, _second_look, needs_second_look

    probs = np.array([[0.97, 0.02, 0.01],   # a sure cat: not looked at
                      [0.60, 0.30, 0.10],   # an unsure pet
                      [0.01, 0.02, 0.97],   # sure other
                      [0.02, 0.08, 0.90]])  # unsure, and 10% likely a pet
    logits = np.log(probs)
    view = View("pixels", 256, "centre")
    assert needs_second_look(logits, 1.0, SecondLook(view, 0.95), 2).tolist() == [False, True, False, True]
    assert needs_second_look(logits, 1.0, SecondLook(view, 0.98, 0.05), 2).tolist() == [True, True, False, True]
    assert needs_second_look(logits, 1.0, SecondLook(view, 0.98, 0.2), 2).tolist() == [True, True, False, False]
    assert needs_second_look(logits[:, [2, 0, 1]], 1.0, SecondLook(view, 0.98, 0.2), 0).tolist() == [True, True, False, False]
    assert _second_look({"name": "pixels", "size": 256, "resize": "centre", "below": 0.85}) == SecondLook(view, 0.85, 0.0)
    assert SecondLook(view, 0.98, 0.05).when() == "when less than 98% sure and at least 5% likely a pet"
