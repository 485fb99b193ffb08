"""Record what the shipped model says about the self-test samples: writes assets/samples/expected.json.

Runs the core (not the window): the shipped model card, ``Classifier`` and ``classify_files``, exactly
what ``catsort-gui --self-test`` later compares against (verdict = the label with the highest
probability; probabilities in the card's label order, within ``tolerance``). Re-run after the model in
assets/ is replaced; that is all it takes to re-record:

    python packaging/record_samples.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from catsort.classify import classify_files
from catsort.model import Classifier, ModelCard, shipped_card_path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assets" / "samples"
SUFFIXES = {".jpg", ".jpeg", ".png", ".heic", ".heif"}
TOLERANCE = 0.02


def main() -> int:
    card = ModelCard.load(shipped_card_path())
    classifier = Classifier(card)
    paths = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in SUFFIXES)
    if not paths:
        print(f"no sample images in {SAMPLES}", file=sys.stderr)
        return 1
    samples: dict[str, dict] = {}
    for pred in classify_files(paths, classifier, jobs=1):
        if pred.error is not None or pred.probabilities is None:
            print(f"{pred.path.name}: cannot be classified: {pred.error}", file=sys.stderr)
            return 1
        probs = [round(p, 6) for p in pred.probabilities]
        verdict = card.labels[max(range(len(probs)), key=probs.__getitem__)]
        samples[pred.path.name] = {"verdict": verdict, "probabilities": probs}
        print(f"{pred.path.name}: {verdict} " + " ".join(f"{lab}={p:.4f}" for lab, p in zip(card.labels, probs, strict=True)))
    expected = {
        "model_sha256": card.onnx_sha256,
        "labels": list(card.labels),
        "tolerance": TOLERANCE,
        "samples": samples,
    }
    out = SAMPLES / "expected.json"
    out.write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out} (model {card.raw.get('name', card.onnx_path.name)}, sha256 {card.onnx_sha256[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
