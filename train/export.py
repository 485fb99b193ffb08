"""Keras -> ONNX with tf2onnx, a parity check on real images, and the model card that goes with it.

``model.export()`` is avoided on purpose: a SavedModel made that way from a model with
augmentation layers runs them in training mode. ``from_keras`` traces the inference graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from catsort.checksum import file_sha256
from catsort.images import View, load_views, stack_views

OPSET = 17
PARITY_TOLERANCE = 1e-4


def to_onnx(model: keras.Model, path: Path) -> Path:
    """ONNX inputs keep the Keras inputs' names and shapes (a ``None`` side stays free).

    tf2onnx gives each input's batch dimension a symbol of its own; they are renamed to one, or
    shape inference (which int8 quantization runs first) cannot tell that the views of a photo
    come in batches of the same length.
    """
    spec = tuple(tf.TensorSpec((None, *x.shape[1:]), tf.uint8, name=x.name) for x in model.inputs)
    onnx_model, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    for value in [*onnx_model.graph.input, *onnx_model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, str(path))
    return path


def feeds(paths: list[Path], views: list[View]) -> dict[str, np.ndarray]:
    """The model's inputs for ``paths`` through the app's loader: input name -> uint8 batch; or ``ImageError``."""
    return stack_views([load_views(p, views) for p in paths], views)


def parity(model: keras.Model, onnx_path: Path, inputs: dict[str, np.ndarray]) -> float:
    """Max abs difference between Keras (inference mode) and onnxruntime outputs on ``inputs`` (name -> batch)."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, inputs)[0]
    batch = [inputs[x.name] for x in model.inputs]
    want = np.asarray(model(batch if len(batch) > 1 else batch[0], training=False))
    return float(np.abs(got - want).max())


def write_card(card_path: Path, onnx_path: Path, fields: dict) -> dict:
    """The card names its ONNX file and hash: the app refuses a model that does not match it."""
    card = {"onnx": {"file": onnx_path.name, "sha256": file_sha256(onnx_path), "bytes": onnx_path.stat().st_size, "opset": OPSET}}
    card.update(fields)
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


def add_logit_bias(src: Path, dst: Path, bias: np.ndarray) -> Path:
    """Copy ``src`` with a constant added to its logits output: the pet bias fitted after export goes in the graph.

    The app applies only the card's temperature, so whatever else calibration fits must be part of the model.
    """
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    out = model.graph.output[0].name
    raw = out + "_before_pet_bias"
    for node in model.graph.node:
        node.output[:] = [raw if name == out else name for name in node.output]
        node.input[:] = [raw if name == out else name for name in node.input]
    model.graph.initializer.append(numpy_helper.from_array(np.asarray(bias, dtype=np.float32), "pet_bias"))
    model.graph.node.append(helper.make_node("Add", [raw, "pet_bias"], [out], name="add_pet_bias"))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst
