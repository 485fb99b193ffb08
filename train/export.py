"""Keras -> ONNX with tf2onnx, a parity check on real images, and the model card that goes with it.

``model.export()`` is avoided on purpose: a SavedModel made that way from a model with
augmentation layers runs them in training mode. ``from_keras`` traces the inference graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from catsort.checksum import file_sha256

OPSET = 17
PARITY_TOLERANCE = 1e-4


def to_onnx(model: keras.Model, path: Path, size: int | None) -> Path:
    """``size=None`` leaves height and width free (the feature extractor runs at several sizes)."""
    spec = (tf.TensorSpec((None, size, size, 3), tf.uint8, name="pixels"),)
    path.parent.mkdir(parents=True, exist_ok=True)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET, output_path=str(path))
    return path


def parity(model: keras.Model, onnx_path: Path, pixels: np.ndarray) -> float:
    """Max abs difference between Keras (inference mode) and onnxruntime outputs on ``pixels``."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    want = np.asarray(model(pixels, training=False))
    return float(np.abs(got - want).max())


def write_card(card_path: Path, onnx_path: Path, fields: dict) -> dict:
    """The card names its ONNX file and hash: the app refuses a model that does not match it."""
    card = {"onnx": {"file": onnx_path.name, "sha256": file_sha256(onnx_path), "bytes": onnx_path.stat().st_size, "opset": OPSET}}
    card.update(fields)
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card
