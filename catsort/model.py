"""The model card (the contract between ``train/`` and the app) and the onnxruntime session behind it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from catsort.checksum import file_sha256
from catsort.errors import ModelError
from catsort.images import RESIZE_MODES, View


@dataclass(frozen=True)
class ModelCard:
    """What the app needs to know to run a model: read from the JSON card beside the ONNX file."""

    onnx_path: Path
    onnx_sha256: str
    labels: tuple[str, ...]
    views: tuple[View, ...]
    temperature: float
    threshold: float
    raw: dict

    @property
    def name(self) -> str:
        return str(self.raw.get("name", self.onnx_path.stem))

    @property
    def identity(self) -> str:
        """How ``--version`` and the About box name the model: its name and the start of its hash."""
        return f"{self.name} (sha256 {self.onnx_sha256[:12]})"

    @classmethod
    def load(cls, card_path: Path) -> ModelCard:
        try:
            raw = json.loads(card_path.read_text(encoding="utf-8"))
            onnx = raw["onnx"]
            card = cls(
                onnx_path=card_path.parent / onnx["file"],
                onnx_sha256=str(onnx["sha256"]),
                labels=tuple(raw["labels"]),
                views=tuple(View(str(v["name"]), int(v["size"]), str(v["resize"])) for v in raw["input"]["views"]),
                temperature=float(raw["calibration"]["temperature"]),
                threshold=float(raw["calibration"]["threshold"]),
                raw=raw,
            )
        except OSError as exc:
            raise ModelError(f"{card_path}: cannot read model card: {exc.strerror or exc}") from None
        except KeyError as exc:
            # Cards from before the two-view model name one input (input.size) and no input.views.
            raise ModelError(f"{card_path}: not a valid model card for this catsort (no {exc.args[0]!r} field)") from None
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{card_path}: not a valid model card ({exc})") from None
        if set(card.labels) != {"cat", "dog", "other"}:
            raise ModelError(f"{card_path}: labels must be cat, dog and other, got {list(card.labels)}")
        if not card.views:
            raise ModelError(f"{card_path}: the card names no input view")
        for view in card.views:
            if view.resize not in RESIZE_MODES:
                raise ModelError(f"{card_path}: unsupported resize mode {view.resize!r} for input {view.name!r}")
        if not card.temperature > 0.0:
            raise ModelError(f"{card_path}: temperature must be positive")
        return card


def shipped_card_path() -> Path:
    """The card of the model shipped with the app.

    An installed wheel or frozen app has it in ``catsort/assets/`` (pyproject maps the top-level
    ``assets/`` there); a source checkout, editable install included, has it in ``assets/``.
    """
    here = Path(__file__).resolve().parent
    for folder in (here / "assets", here.parent / "assets"):
        if (folder / "model.json").is_file():
            return folder / "model.json"
    raise ModelError(f"no model shipped with this copy of catsort (looked in {here / 'assets'} and {here.parent / 'assets'})")


def resolve_card_path(model: Path | None) -> Path:
    """``--model`` may name a card (``.json``) or an ONNX file with ``<stem>.json`` or ``model.json`` beside it."""
    if model is None:
        return shipped_card_path()
    if model.suffix.lower() == ".json":
        return model
    for candidate in (model.with_suffix(".json"), model.parent / "model.json"):
        if candidate.is_file():
            return candidate
    raise ModelError(f"{model}: no model card found (expected {model.with_suffix('.json').name} or model.json beside it)")


def calibrated_probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Temperature-scaled softmax: the probabilities every threshold is compared with.

    One definition for the app and for ``train/``, so calibration is fitted on exactly what runs.
    """
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """Runs the card's ONNX model on batches of uint8 pixels; refuses a model that does not match its card."""

    def __init__(self, card: ModelCard, threads: int | None = None) -> None:
        try:
            actual = file_sha256(card.onnx_path)
        except OSError as exc:
            raise ModelError(f"{card.onnx_path}: cannot read model: {exc.strerror or exc}") from None
        if actual != card.onnx_sha256:
            raise ModelError(
                f"{card.onnx_path}: sha256 {actual[:12]}… does not match its card ({card.onnx_sha256[:12]}…); "
                "the model file was changed or belongs to another card"
            )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Decoding threads share the cores with inference: spinning workers would steal their time.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(card.onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for malformed graphs
            raise ModelError(f"{card.onnx_path}: onnxruntime cannot load it: {exc}") from None
        names = {i.name for i in self._session.get_inputs()}
        wanted = {v.name for v in card.views}
        if names != wanted:
            raise ModelError(f"{card.onnx_path}: the model's inputs {sorted(names)} are not the card's views {sorted(wanted)}")
        self.card = card

    def logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """A batch per card view, by name (see ``images.stack_views``) -> uncalibrated logits ``float32[n, labels]``."""
        return self._session.run(None, inputs)[0]

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return calibrated_probabilities(logits, self.card.temperature)
