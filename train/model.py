"""The classifier: pretrained backbone + a three-way head that keeps the ImageNet head's knowledge.

The logits are the sum of two parts. One is a small MLP on the pooled features, fitted on our
training data. The other is the ImageNet head's log probability of its likeliest cat breed, dog
breed and other class, scaled by one weight: that head was trained on 1.2M real photos, so it
generalises to users' photos better than anything fitted on 180 px squashed images. A bias on
"pet" corrects how much rarer pets look to a model fitted on the training data than they are among
real photos. Weight and bias are chosen on real validation photos (see ``fit.py``), never on the
training data.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from train.backbone import FEATURES, imagenet_pet_scores


def build_head(hidden: int = 192, dropout: float = 0.5, l2: float = 1e-4) -> keras.Model:
    features = keras.Input((FEATURES,), name="features")
    scores = keras.Input((3,), name="imagenet_scores")
    x = layers.Dropout(dropout, name="head_dropout_in")(features)
    x = layers.Dense(hidden, activation="relu", kernel_regularizer=keras.regularizers.L2(l2), name="head_hidden")(x)
    x = layers.Dropout(dropout, name="head_dropout_hidden")(x)
    learned = layers.Dense(3, name="head_logits")(x)
    prior = layers.Dense(3, kernel_initializer="zeros", trainable=False, name="real_photo_terms")(scores)
    return keras.Model([features, scores], layers.Add(name="logits")([learned, prior]), name="head")


def average_heads(heads: list[keras.Model]) -> keras.Model:
    """One MLP whose logits are the mean of ``heads``' logits (each fitted with its own seed).

    The seed alone moved v1's threshold from 0.80 to 0.93 (train/README.md); the mean of a few MLPs
    removes that lottery. The mean is folded into one MLP as wide as all of them together (hidden
    layers side by side, output weights divided by their number), so the exported graph holds two
    matrix products instead of two per member: the same function, and less for onnxruntime to
    prepare at every start. The members' real-photo terms must be zero (as while fitting).
    """
    if len(heads) == 1:
        return heads[0]
    hidden = [h.get_layer("head_hidden").get_weights() for h in heads]
    logits = [h.get_layer("head_logits").get_weights() for h in heads]
    merged = build_head(hidden=sum(w.shape[1] for w, _ in hidden))
    merged.get_layer("head_hidden").set_weights([np.concatenate([w for w, _ in hidden], axis=1), np.concatenate([b for _, b in hidden])])
    merged.get_layer("head_logits").set_weights([np.concatenate([w for w, _ in logits], axis=0) / len(heads),
                                                 np.mean([b for _, b in logits], axis=0)])
    return merged


def set_real_photo_terms(head: keras.Model, weight: float, pet_bias: float = 0.0) -> None:
    """Logits = MLP(features) + weight * ImageNet scores + pet_bias on cat and dog.

    Both are zero while the MLP is fitted, so it learns the training data on its own.
    """
    bias = np.array([pet_bias, pet_bias, 0.0], dtype="float32")
    head.get_layer("real_photo_terms").set_weights([np.eye(3, dtype="float32") * weight, bias])


def assemble(backbone: keras.Model, head: keras.Model, size: int | None = None) -> keras.Model:
    """The photo's pixels -> logits: the single graph exported to ONNX (``None``: any square size).

    One view, one pass of the backbone: the MLP and the ImageNet head both read it. How the photo is
    fitted (squashed or centre square, and at what size) is the app's part, named in the card; it is
    chosen with the ImageNet weight in ``fit.choose_on_pool``. A free size lets the same graph take
    the card's second look at a larger view (``fit.choose_second_look``). v1 ran the backbone twice
    (squashed 288 px and centre 224 px); one view at 240 px or less keeps the compute under half of that.
    """
    pixels = keras.Input((size, size, 3), dtype="uint8", name="pixels")
    features, imagenet_logits = backbone(pixels)
    scores = layers.Lambda(imagenet_pet_scores, name="imagenet_scores")(imagenet_logits)
    return keras.Model(pixels, head([features, scores]), name="catsort")


def fine_tuning_model(top: keras.Model, head: keras.Model) -> keras.Model:
    """Block-13 maps -> (three-way logits, the network's own ImageNet cat/dog/other scores).

    The second output is trained to stay at the frozen network's value (distillation): fitting the
    squashed 180 px photos must not erase what the ImageNet head knows about real ones.
    """
    maps = keras.Input(top.input.shape[1:], name="maps")
    features, imagenet_logits = top(maps, training=False)
    scores = layers.Lambda(imagenet_pet_scores, name="imagenet_scores")(imagenet_logits)
    return keras.Model(maps, [head([features, scores]), scores], name="fine_tuning")


def build_scratch(size: int = 64) -> keras.Model:
    """The classic from-scratch Keras CNN, as a baseline that shows what transfer learning buys."""
    pixels = keras.Input((size, size, 3), dtype="uint8", name="pixels")
    x = layers.Lambda(lambda t: keras.ops.cast(t, "float32"), name="to_float")(pixels)
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(x)
    x = layers.RandomFlip("horizontal")(x)
    x = layers.RandomRotation(0.05)(x)
    x = layers.RandomZoom(0.15)(x)
    for filters in (32, 64, 128, 192):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(pixels, layers.Dense(3, name="logits")(x), name="scratch")
