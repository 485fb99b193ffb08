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
    scratch_size: int = 64
    max_wrong: float = 0.005
    seed: int = 0
    sizes: tuple[int, ...] = (224, 240, 256, 272, 288, 304, 320)
    fine_tune_rounds: int = 12
    steps_per_round: int = 300
    patience: int = 3
    fine_tune_lr: float = 1e-4
    distill_weight: float = 1.0
    quantization_photos: int = 200
