"""``python -m train fit|evaluate|ship|compare``: see README.md for the exact commands behind the shipped model."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path

from train.options import FitOptions

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter buries the training log


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="train, export to ONNX, calibrate and write the model card into --out")
    fit.add_argument("--data", type=Path, action="append", required=True, help="folder with Cat/Dog (or cat/dog) images; repeatable")
    fit.add_argument("--other", type=Path, action="append", default=[], help="folder whose images are all 'other'; repeatable")
    fit.add_argument("--real", type=Path, required=True, help="real photos in cat/ dog/ other/ for calibration and reporting (never trained on)")
    fit.add_argument("--realtrain", type=Path, help="real photos in cat/ dog/ other/ to train on (folds: held out, validation, train)")
    fit.add_argument("--realtrain-weight", type=float, default=FitOptions.realtrain_weight, help="loss weight of a real training view")
    fit.add_argument("--realtrain-aug-views", type=int, default=FitOptions.realtrain_aug_views, help="augmented copies per real training photo")
    fit.add_argument("--out", type=Path, required=True, help="run folder (outside the repository, e.g. runs/main)")
    fit.add_argument("--backbone", choices=("efficientnet-lite0", "scratch"), default="efficientnet-lite0")
    fit.add_argument("--epochs", type=int, default=40)
    fit.add_argument("--aug-views", type=int, default=2, help="augmented copies per training image (pretrained backbone)")
    fit.add_argument(
        "--views", nargs="+", default=list(FitOptions.views), metavar="RESIZE-SIZE",
        help="candidates for the one view (pretrained backbone), e.g. squash-240 centre-224; chosen with the ImageNet weight "
        "by cross-fitted likelihood on real/ + the realtrain held-out folds",
    )
    fit.add_argument("--train-view", default=FitOptions.train_view, metavar="RESIZE-SIZE",
                     help="how training photos are fitted to the network, e.g. centre-224 (as --views)")
    fit.add_argument(
        "--second-views", nargs="*", default=list(FitOptions.second_views), metavar="RESIZE-SIZE",
        help="candidates for a second look where the first is unsure (none given: one look), chosen with its gate "
        f"(below {', '.join(map(str, FitOptions.gates))}; pet probability from {', '.join(map(str, FitOptions.pets_from))}) on the same "
        f"photos, adding at most {FitOptions.second_look_budget} of the first look's compute on their non-pets",
    )
    fit.add_argument("--head-seeds", type=int, default=FitOptions.head_seeds, help="MLPs fitted with consecutive seeds and averaged")
    fit.add_argument("--head-validation", nargs="+", choices=("val", "realtrain_val"), default=list(FitOptions.head_validation),
                     help="validation splits that stop each MLP early (val: PetImages + other; realtrain_val: the folds that also "
                     "choose the fine-tuning round)")
    fit.add_argument(
        "--fine-tune-rounds", type=int, default=FitOptions.fine_tune_rounds,
        help=f"at most this many rounds of {FitOptions.steps_per_round} steps fine-tuning the top blocks (0: frozen backbone)",
    )
    fit.add_argument("--fine-tune-lrs", type=float, nargs="+", default=FitOptions.fine_tune_lrs,
                     help="Adam learning rates the fine-tuning runs at, each from the same start; the validation folds keep one")
    ev = sub.add_parser("evaluate", help="metrics and plots of a model on a folder with cat/ dog/ other/ sub-folders")
    ev.add_argument("folder", type=Path)
    ev.add_argument("--model", type=Path, help="ONNX file or card (default: the shipped model)")
    ev.add_argument("--out", type=Path, help="where to write metrics.json and the PNG plots")
    ship = sub.add_parser("ship", help="copy a run's ONNX + card into assets/, with a baseline run's figures")
    ship.add_argument("run", type=Path)
    ship.add_argument("--baseline", type=Path, help="run folder of the scratch baseline")
    ship.add_argument("--assets", type=Path, default=Path("assets"))
    ship.add_argument("--photos", type=Path, default=Path("../shared/data/real"),
                      help="photos to time the shipped model against the run's on (compute ratio recorded in the card)")
    ship.add_argument("--time-against", type=Path,
                      help="card of the model to time against (default: the one in --assets); the compute target is against v1's")
    ship.add_argument("--plots-from", default="eval_crossfit", help="the run's evaluation folder whose plots ship")
    cmp = sub.add_parser("compare", help="models as they ship, scored on a run's validation splits: whether a new run replaces the shipped model")
    cmp.add_argument("run", type=Path, help="run folder whose samples.json names the validation splits")
    cmp.add_argument("cards", type=Path, nargs="+", help="model cards (e.g. assets/model.json and RUN/model.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    if args.command == "fit":
        from train.fit import run

        run(FitOptions(
            args.data, args.other, args.real, args.out, args.backbone, args.aug_views, args.epochs,
            realtrain=args.realtrain, realtrain_weight=args.realtrain_weight, realtrain_aug_views=args.realtrain_aug_views,
            views=tuple(args.views), second_views=tuple(args.second_views),
            train_view=args.train_view, head_seeds=args.head_seeds, head_validation=tuple(args.head_validation),
            fine_tune_rounds=args.fine_tune_rounds, fine_tune_lrs=tuple(args.fine_tune_lrs),
        ))
    elif args.command == "evaluate":
        from train.evaluate import main as evaluate

        evaluate(args.folder, args.model, args.out)
    elif args.command == "compare":
        from train.compare import compare

        compare(args.run, args.cards)
    else:
        ship_run(args.run, args.baseline, args.assets, args.photos, args.plots_from, args.time_against)


def ship_run(run: Path, baseline: Path | None, assets: Path, photos: Path, plots_from: str, time_against: Path | None = None) -> None:
    """Time the run's model against ``time_against`` (default: the model in ``assets``), then copy the run's ONNX, card and plots into ``assets``."""
    card = json.loads((run / "model.json").read_text())
    previous = assets / "model.json"
    reference = time_against or previous
    if reference.is_file() and photos.is_dir():
        from train.speed import compare

        card["compute"] = compare(reference, run / "model.json", photos)
        print(json.dumps(card["compute"], indent=2))
    if baseline:
        base = json.loads((baseline / "model.json").read_text())
        card["baseline"] = {"model": base["model"], "metrics": base["metrics"], "command": base["command"], "calibration": base["calibration"]}
    elif previous.is_file() and "baseline" in (old := json.loads(previous.read_text())):
        card["baseline"] = old["baseline"]
        same = old.get("training_data", {}).get("fingerprint") == card.get("training_data", {}).get("fingerprint")
        card["baseline"]["note"] = (f"kept from the previous card ({old.get('name')}), not re-run for this model: measured on "
                                    + ("the same data and splits (same data fingerprint)" if same else "that card's data and splits"))
    from train.targets import reached

    card["targets_reached"] = reached(card)
    print(json.dumps(card["targets_reached"], indent=2))
    assets.mkdir(exist_ok=True)
    shutil.copyfile(run / card["onnx"]["file"], assets / card["onnx"]["file"])
    (assets / "model.json").write_text(json.dumps(card, indent=2) + "\n")
    plots = assets / "plots"
    plots.mkdir(exist_ok=True)
    for png in ("threshold_coverage.png", "confusion.png", "reliability.png"):
        shutil.copyfile(run / plots_from / png, plots / png)


if __name__ == "__main__":
    main()
