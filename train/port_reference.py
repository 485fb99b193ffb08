"""Compute reference ImageNet logits with the original PyTorch EfficientNet-Lite code (run once).

Needs torch and ``efficientnet-lite-pytorch``, which are not project dependencies: run it in a
throw-away environment. Its output, ``tests/data/efficientnet_lite0_reference.npz``, lets the test
suite prove that the Keras port computes the same function without torch installed.

    python train/port_reference.py WEIGHTS.pth tests/data/efficientnet_lite0_reference.npz
"""

from __future__ import annotations

import sys

import numpy as np


def probe_images() -> np.ndarray:
    """Smooth colourful patterns with edges: exercise every channel and padding, compress well."""
    y, x = np.mgrid[0:224, 0:224] / 224.0
    images = []
    for k in range(4):
        r = 127.5 + 127.5 * np.sin(2 * np.pi * (x * (k + 1) + 0.3 * k))
        g = 127.5 + 127.5 * np.cos(2 * np.pi * (y * (k + 2) - x))
        b = np.where((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.1 * (k + 1) / 4, 230.0, 25.0 * k)
        images.append(np.stack([r, g, b], axis=-1))
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


def main(weights: str, out: str) -> None:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    pixels = probe_images()
    x = torch.from_numpy((pixels.astype(np.float32) - 127.5) / 127.5).permute(0, 3, 1, 2)
    with torch.no_grad():
        logits = model(x).numpy()
    np.savez_compressed(out, logits=logits, top5=np.argsort(-logits, axis=1)[:, :5])
    print("top classes:", np.argsort(-logits, axis=1)[:, :5].tolist())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
