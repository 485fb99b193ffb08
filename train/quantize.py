"""Float ONNX -> int8 ONNX: the convolutional trunk in 8 bits, everything from the global pooling on in float.

Through the app's Classifier on one thread the int8 trunk takes 6.8 ms per 288 px photo against
20.6 for the float model (this machine, AVX-512 VNNI), and the file is half the size. The pooled
features, the ImageNet classifier and the cat/dog/other head stay float: in a trial that quantized
them too, the real report half's log-loss rose from 0.044 to 0.056; with the trunk alone it is 0.048,
and the threshold, pets sorted and wrong moves stayed where the float model had them.
Activation ranges are calibrated on training photos through the app's own loader, never on real/.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from catsort.images import ImageError, View
from catsort.model import calibrated_probabilities
from train.export import feeds


class _Photos(CalibrationDataReader):
    def __init__(self, paths: list[Path], views: list[View]) -> None:
        self._feeds = self._read(paths, views)

    @staticmethod
    def _read(paths: list[Path], views: list[View]) -> Iterator[dict[str, np.ndarray]]:
        for path in paths:
            try:
                yield feeds([path], views)
            except ImageError:
                continue

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def float_tail(model: onnx.ModelProto) -> list[str]:
    """Names of the global pooling node and of every node that depends on it."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    todo = [node for node in model.graph.node if node.op_type == "GlobalAveragePool"]
    if not todo:
        raise ValueError("no GlobalAveragePool in the graph: cannot tell the trunk from the head")
    tail: dict[str, None] = {}
    while todo:
        node = todo.pop()
        if node.name in tail:
            continue
        tail[node.name] = None
        for output in node.output:
            todo.extend(consumers.get(output, []))
    return list(tail)


def quantize(float_onnx: Path, out: Path, calibration_photos: list[Path], views: list[View]) -> Path:
    """Write the int8 model to ``out``: static QDQ, per-channel 7-bit weights, uint8 activations."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_onnx), str(prepared))
        model = onnx.load(str(prepared))
        quantize_static(
            str(prepared), str(out), _Photos(calibration_photos, views),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            # 7-bit weights: x86 CPUs without VNNI (AVX2, many users' laptops) multiply uint8 by int8
            # in pairs summed into int16, which overflows with full 8-bit weights. Costs little here.
            reduce_range=True,
            nodes_to_exclude=float_tail(model),
        )
    return out


def int8_agreement(float_onnx: Path, int8_onnx: Path, photos: list[Path], views: list[View]) -> dict:
    """How far the int8 model strays from the float one on ``photos`` (softmax at temperature 1)."""
    inputs = feeds(photos, views)
    batches = [{name: x[i : i + 32] for name, x in inputs.items()} for i in range(0, len(photos), 32)]
    probs = []
    for path in (float_onnx, int8_onnx):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        logits = np.concatenate([session.run(None, batch)[0] for batch in batches])
        probs.append(calibrated_probabilities(logits))
    return {
        "photos": len(photos),
        "same_top_label": round(float((probs[0].argmax(1) == probs[1].argmax(1)).mean()), 4),
        "mean_abs_probability_change": round(float(np.abs(probs[0] - probs[1]).mean()), 5),
        "max_abs_probability_change": round(float(np.abs(probs[0] - probs[1]).max()), 5),
    }
