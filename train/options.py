"""What one training run is told: its own light module, so ``python -m train --help`` (and
``ship``, ``evaluate``) can show the defaults without importing TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class FitOptions:
    data: list[Path]
    other: list[Path]
    real: Path
    out: Path
    backbone: str = "efficientnet-lite0"
    aug_views: int = 2
    epochs: int = 40
    realtrain: Path | None = None
    """Real photos for training (cat/ dog/ other/), split in folds by train.data.realtrain_role."""
    realtrain_aug_views: int = 6
    """Augmented copies per real training photo: they are few, and the domain the app serves."""
    realtrain_weight: float = 2.0
    """Loss weight of each real training view against 1 for a squashed 180 px view."""
    scratch_size: int = 64
    max_wrong: float = 0.005
    seed: int = 0
    train_view: str = "centre-224"
    """How the training photos (and the validation splits that stop the MLP) are fitted to the network,
    ``resize-size`` like ``views``; training at the inference view spares the MLP a shift between the two."""
    views: tuple[str, ...] = ("squash-224", "squash-240", "centre-224", "centre-240")
    """Candidates for the one view at inference, ``resize-size`` (``catsort.images.RESIZE_MODES``). 240 px
    is 43% of v1's 288 + 224 px pixels and measured 0.48x its compute: the budget is half."""
    second_views: tuple[str, ...] = ("centre-256", "centre-288", "squash-288")
    """Candidates for the second look (``resize-size``), run where the first look is unsure; "none" is always a candidate.
    Centre 256 px costs 1.14x the first look's pixels against 288 px's 1.44x, so at the same gates it fits the budget."""
    gates: tuple[float, ...] = (0.85, 0.9, 0.95, 0.98)
    """Candidate gates: the second look runs where the first look's calibrated top probability is below one."""
    pets_from: tuple[float, ...] = (0.0, 0.05, 0.25)
    """Candidate lower bounds on the first look's calibrated pet probability for the second look, crossed with
    ``gates``: 0 looks again wherever unsure; above it, the look is spent on photos a pet could be in, where the
    wrong moves and the pets left behind are, and not on the sure-enough "other" photos that fill most folders."""
    second_look_budget: float = 0.08
    """The most compute a second look may add, as a share of the first look's, on the pool's non-pets. v4's
    first look takes 0.46 of v1's compute (two runs of ``train ship``), and issue 17's budget is 0.5."""
    head_seeds: int = 5
    """MLPs fitted with consecutive seeds and averaged (``train.model.average_heads``)."""
    head_validation: tuple[str, ...] = ("val", "realtrain_val")
    """Validation splits whose loss stops each MLP early: "val" (PetImages + other) and "realtrain_val" (the
    realtrain validation folds, which also choose the fine-tuning round). Without "realtrain_val", the folds that
    choose the round have not also chosen the heads' epochs (runs/v16)."""
    fine_tune_rounds: int = 6
    steps_per_round: int = 300
    patience: int = 2
    fine_tune_lrs: tuple[float, ...] = (1e-4,)
    """Adam rates fine-tuning is run at, each from the same start; the realtrain validation folds keep one rate's
    round. v14 offered 3e-5 beside 1e-4 in case a smaller step made the kept round less of a jump: it was worse
    at every round (train/README.md), so the default is v6's rate alone and v6's command is unchanged."""
    distill_weight: float = 1.0
    quantization_photos: int = 200
    calibration_folds: int = 5
