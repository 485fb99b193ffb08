"""The Keras port of EfficientNet-Lite0 and a smoke run of the whole training pipeline."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import BLUE, GREEN, RED, REPO, photo, shared

pytest.importorskip("tensorflow", reason="needs the [train] extra")

from catsort.images import load_image  # noqa: E402
from train.backbone import IMAGENET_CAT_CLASSES, IMAGENET_DOG_CLASSES, pretrained_backbone  # noqa: E402
from train.port_reference import probe_images  # noqa: E402


@pytest.fixture(scope="module")
def backbone():
    return pretrained_backbone()


def test_port_matches_the_original_pytorch_network(backbone) -> None:
    reference = np.load(REPO / "tests" / "data" / "efficientnet_lite0_reference.npz")
    _, logits = backbone.predict(probe_images(), verbose=0)
    np.testing.assert_allclose(logits, reference["logits"], atol=2e-3)
    assert (np.argsort(-logits, axis=1)[:, :5] == reference["top5"]).all()


def test_imagenet_head_knows_real_cats_and_dogs(backbone) -> None:
    real = shared("real")
    for label, classes in (("cat", IMAGENET_CAT_CLASSES), ("dog", IMAGENET_DOG_CLASSES)):
        photos = sorted((real / label).glob("*.jpg"))[:12]
        _, logits = backbone.predict(np.stack([load_image(p, 224) for p in photos]), verbose=0)
        top = logits.argmax(axis=1)
        assert np.isin(top, list(classes)).mean() >= 0.75, (label, top)


def test_averaged_heads_fold_into_one_mlp_with_the_mean_of_their_logits() -> None:
    """The shipped head is the mean of several MLPs, folded into one wider MLP: the same function."""
    from train.backbone import FEATURES
    from train.model import average_heads, build_head, set_real_photo_terms

    members = [build_head() for _ in range(3)]
    rng = np.random.default_rng(0)
    for m in members:  # trained-looking weights, not the zero-initialised biases
        m.set_weights([rng.normal(scale=0.05, size=w.shape).astype("float32") for w in m.get_weights()])
        set_real_photo_terms(m, 0.0)
    features, scores = rng.normal(size=(4, FEATURES)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")
    learned = np.mean([np.asarray(m([features, scores], training=False)) for m in members], axis=0)
    head = average_heads(members)
    assert head.get_layer("head_hidden").get_weights()[0].shape == (FEATURES, 3 * 192)
    set_real_photo_terms(head, 0.0)
    np.testing.assert_allclose(np.asarray(head([features, scores], training=False)), learned, atol=1e-5)
    set_real_photo_terms(head, 0.75, pet_bias=0.5)
    expected = learned + 0.75 * scores + np.array([0.5, 0.5, 0.0])
    np.testing.assert_allclose(np.asarray(head([features, scores], training=False)), expected, atol=1e-5)
    assert average_heads(members[:1]) is members[0]


def _tiny_dataset(root: Path) -> None:
    for folder, colour, n in (("pets/Cat", RED, 12), ("pets/Dog", BLUE, 12), ("other/misc", GREEN, 12),
                              ("real/cat", RED, 4), ("real/dog", BLUE, 4), ("real/other", GREEN, 4),
                              ("realtrain/cat", RED, 16), ("realtrain/dog", BLUE, 16), ("realtrain/other/rabbit", GREEN, 16)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        size = (240, 180) if folder.startswith("realtrain") else (180, 180)
        for i in range(n):
            photo(colour, size, seed=zlib.crc32(f"{folder}/{i}".encode())).save(root / folder / f"{i}.jpg", quality=75)
    (root / "pets/Cat/666.jpg").write_bytes(b"")


@pytest.mark.parametrize("backbone", ["efficientnet-lite0", "scratch"])
def test_fit_export_card_smoke(tmp_path: Path, backbone: str) -> None:
    """A few steps of the real pipeline: features or images, fit, ONNX export with parity, calibration, card."""
    from train.fit import run
    from train.options import FitOptions

    _tiny_dataset(tmp_path)
    opts = FitOptions([tmp_path / "pets"], [tmp_path / "other"], tmp_path / "real", tmp_path / "run", backbone, aug_views=1, epochs=2,
                      realtrain=tmp_path / "realtrain", realtrain_aug_views=1, views=("squash-224", "centre-240"), fine_tune_rounds=2,
                      steps_per_round=2, fine_tune_lrs=(1e-4, 3e-5),
                      head_seeds=2)
    card = run(opts)
    assert card["name"] == f"catsort-{backbone}-v6"
    assert card["onnx_parity_max_abs_diff"] <= 1e-4
    assert card["training_data"]["skipped"] == {"unreadable": 1}
    splits = card["training_data"]["splits"]
    assert all(sum(splits[f"realtrain_{role}"].values()) > 0 for role in ("train", "val", "heldout"))
    crossfit = card["metrics"]["cross_fitted"]
    assert crossfit["pooled"]["files"] == crossfit["real"]["files"] + crossfit["realtrain_heldout"]["files"] == 12 + sum(splits["realtrain_heldout"].values())
    assert 0 <= crossfit["pooled"]["wrong_among_moved"] <= crossfit["pooled"]["wrong_among_moved_upper95"] <= 1
    assert "wrong_among_moved_upper95" in card["metrics"]["petimages_other_test_split"]["at_default_threshold"]
    assert (tmp_path / "run" / "eval_crossfit" / "threshold_coverage.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "run" / "eval_test_split" / "metrics.json").read_text())
    assert all(Path(row["file"]).is_file() and row["went_to"] in ("cats/", "dogs/", "stayed")
               for row in saved["misplaced_at_default_threshold"])

    from catsort.classify import classify_files
    from catsort.model import Classifier, ModelCard

    loaded = ModelCard.load(tmp_path / "run" / "model.json")
    assert [v.name for v in loaded.views] == ["pixels"]
    if backbone != "scratch":
        history = card["model"]["fine_tuning"]
        assert [(h["steps"], h["lr"]) for h in history] == [(0, 0.0), (2, 1e-4), (4, 1e-4), (2, 3e-5), (4, 3e-5)]  # opts' two rates
        kept = min(history, key=lambda h: h["realtrain_val_nll"])  # the first of equals, as fine_tune keeps
        assert (f"fine-tuned for {kept['steps']} steps of 64 at Adam rate {kept['lr']:g}" if kept["steps"] else "frozen") in card["model"]["backbone"]
        assert card["model"]["head"].startswith("mean of 2 MLPs") and card["model"]["training_view"].startswith("centre-224")
        assert (tmp_path / "run" / "maps_train_centre_224.npz").is_file()  # trained on the centre square, as the default says
        view = loaded.views[0]
        assert f"{view.resize}-{view.size}" == card["model"]["inference_view"] in ("squash-224", "centre-240")
        nested = card["model"]["nested_selection"]
        assert len(nested["chosen_per_fold"]) == 5 and nested["pooled"]["files"] == crossfit["pooled"]["files"]
    assert loaded.onnx_path.stat().st_size < 20 * 1024 * 1024
    assert loaded.onnx_path.stat().st_size < (tmp_path / "run" / "catsort_float.onnx").stat().st_size
    assert card["quantization"]["mean_abs_probability_change"] < 0.1
    preds = list(classify_files(sorted((tmp_path / "real").rglob("*.jpg")), Classifier(loaded)))
    assert all(p.probabilities is not None and abs(sum(p.probabilities) - 1) < 1e-6 for p in preds)
    if backbone != "scratch":
        second = card["model"]["second_look"]
        assert {"none", "centre-288 below 0.9"} <= set(second["candidates"]) and second["chosen"] in second["candidates"]
        assert len(second["nested"]["chosen_per_fold"]) == 5
        assert ("second_look" in card["input"]) == (second["chosen"] != "none")
        _app_second_look_is_the_cascade_train_calibrates(loaded, sorted((tmp_path / "real").rglob("*.jpg")))
        from train.compare import compare, validation_files

        shipped = tmp_path / "run" / "model.json"
        twin = tmp_path / "run" / "twin.json"  # the same model under another name: paired photo by photo, it differs by nothing
        twin.write_text(shipped.read_text())
        scored = compare(tmp_path / "run", [shipped, twin])
        assert set(scored[str(shipped)]) == {"realtrain_val", "val"} and all(0 < s["nll"] < 5 for s in scored[str(shipped)].values())
        assert all(s == {"nll": scored[str(shipped)][split]["nll"], "minus_first": 0.0, "low": 0.0, "high": 0.0}
                   for split, s in scored[str(twin)].items())
        assert len(validation_files(tmp_path / "run")["realtrain_val"]) == sum(splits["realtrain_val"].values())
    assert json.loads((tmp_path / "run" / "model.json").read_text())["labels"] == ["cat", "dog", "other"]


def _app_second_look_is_the_cascade_train_calibrates(card, paths: list[Path]) -> None:
    """The app's gate and mean (classify_files with a card's second look) are what train.calibrate.Looks fits on."""
    from dataclasses import replace

    from catsort.classify import classify_files
    from catsort.images import View, load_views, stack_views
    from catsort.model import Classifier, SecondLook, calibrated_probabilities
    from train.calibrate import Looks

    first_card, wide = replace(card, second_look=None), View("pixels", 256, "centre")
    plain = Classifier(first_card)
    first = plain.logits(stack_views([load_views(p, first_card.views) for p in paths], first_card.views))
    second = plain.logits(stack_views([load_views(p, [wide]) for p in paths], [wide]))
    probs = calibrated_probabilities(first, card.temperature)
    top, pet = probs.max(axis=1), 1 - probs[:, card.labels.index("other")]
    unsure = top < float(np.median(top)) + 1e-9
    gate = SecondLook(wide, float(np.median(top)) + 1e-9, float(np.median(pet[unsure])))
    looked = unsure & (pet >= gate.pets_from)
    assert looked.any() and (unsure & ~looked).any()  # both bounds of the gate bite
    cascade = replace(card, second_look=gate)
    got = np.array([p.logits for p in classify_files(paths, Classifier(cascade))])
    # the pet bias is inside the graph, so train's bias term is 0 here
    np.testing.assert_allclose(got, Looks(first, second, gate).logits(card.temperature, 0.0), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[~looked], first[~looked], rtol=0, atol=1e-5)
    assert np.abs(got[looked] - first[looked]).max() > 1e-3
