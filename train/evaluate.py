"""Run an ONNX model + card over labelled photos through the app's own pipeline; save metrics and plots."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from catsort.classify import classify_files  # noqa: E402
from catsort.images import ImageError, open_image  # noqa: E402
from catsort.model import Classifier, ModelCard, resolve_card_path  # noqa: E402
from train import metrics  # noqa: E402
from train.data import labelled_files  # noqa: E402

log = logging.getLogger(__name__)


def predict_logits(
    card: ModelCard, files: list[tuple[Path, str]], jobs: int | None = None
) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Paths, logits and label indices of the readable files among ``files`` (unreadable ones are logged)."""
    classifier = Classifier(card)
    label_of = dict(files)
    order = [card.labels.index(name) for name in metrics.LABELS]
    paths, logits, labels = [], [], []
    for pred in classify_files([p for p, _ in files], classifier, jobs):
        if pred.logits is None:
            log.warning("skip %s: %s", pred.path, pred.error)
            continue
        paths.append(pred.path)
        logits.append(np.asarray(pred.logits)[order])
        labels.append(metrics.LABELS.index(label_of[pred.path]))
    return paths, np.array(logits, dtype=np.float32), np.array(labels, dtype=int)


def misplaced_files(paths: list[Path], probs: np.ndarray, labels: np.ndarray, threshold: float) -> list[dict]:
    """The files a run at ``threshold`` would leave out of place, as readable rows (see :func:`metrics.misplaced`)."""
    dest = metrics.decisions(probs, threshold)
    return [
        {
            "file": str(paths[i]),
            "label": metrics.LABELS[labels[i]],
            "went_to": "stayed" if dest[i] == metrics.OTHER else f"{metrics.LABELS[dest[i]]}s/",
            "probabilities": dict(zip(metrics.LABELS, np.round(probs[i], 4).tolist(), strict=False)),
        }
        for i in metrics.misplaced(probs, labels, threshold)
    ]


def plot_misplaced(rows: list[dict], out: Path, title: str, limit: int = 48) -> None:
    """A contact sheet of the first ``limit`` misplaced photos: what a person checks before trusting a figure."""
    shown = rows[:limit]
    if not shown:
        return
    cols = 8
    rows_shown = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows_shown, cols, figsize=(cols * 1.6, rows_shown * 1.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, shown, strict=False):
        try:
            img = open_image(Path(row["file"]), 160)
            img.thumbnail((160, 160))
            ax.imshow(np.asarray(img))
        except ImageError:
            pass
        moved = row["went_to"] != "stayed"
        top, p = max(row["probabilities"].items(), key=lambda kv: kv[1])
        ax.set_title(f"{row['label']} -> {row['went_to']} ({top} {p:.2f})\n{Path(row['file']).name[:24]}",
                     fontsize=6.5, color="crimson" if moved else "black")
    fig.suptitle(f"{title}: {len(rows)} photos out of place (red: moved to a wrong folder)" + (f", first {limit}" if len(rows) > limit else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "misplaced.png", dpi=110)
    plt.close(fig)


def plot_confusion(report: dict, out: Path, title: str) -> None:
    confusion = np.array(report["confusion_matrix"]["counts"])
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), v in np.ndenumerate(confusion):
        ax.text(j, i, str(v), ha="center", va="center", color="black" if v < confusion.max() / 2 else "white")
    ax.set_xticks(range(3), metrics.LABELS)
    ax.set_yticks(range(3), metrics.LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: confusion", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)


def plot_threshold_coverage(sweep: list[dict], threshold: float, out: Path, title: str) -> None:
    t = [row["threshold"] for row in sweep]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(t, [row["pets_to_right_folder"] for row in sweep], label="pets moved to the right folder")
    ax.plot(t, [row["other_kept"] for row in sweep], label="other photos left in place")
    ax.plot(t, [row["moved_share"] for row in sweep], label="share of files moved", linestyle=":")
    ax2 = ax.twinx()
    ax2.plot(t, [100 * row["wrong_among_moved"] for row in sweep], color="crimson", label="moved to a wrong folder (%)")
    ax2.set_ylabel("wrong among moved (%)", color="crimson")
    ax.axvline(threshold, color="grey", linestyle="--")
    ax.set_xlabel("confidence threshold")
    ax.set_ylim(0.5, 1.005)
    ax.set_title(f"{title}: threshold vs coverage (default {threshold:.3f})", fontsize=8)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "threshold_coverage.png", dpi=110)
    plt.close(fig)


def plot_reliability(probs: np.ndarray, labels: np.ndarray, out: Path, title: str) -> None:
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    edges = np.linspace(1 / 3, 1, 11)
    idx = np.clip(np.digitize(conf, edges) - 1, 0, 9)
    mids, accs, counts = [], [], []
    for b in range(10):
        sel = idx == b
        if sel.any():
            mids.append(conf[sel].mean())
            accs.append(right[sel].mean())
            counts.append(int(sel.sum()))
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([1 / 3, 1], [1 / 3, 1], color="grey", linestyle="--", label="perfect calibration")
    ax.plot(mids, accs, marker="o", label="model")
    for m, a, c in zip(mids, accs, counts, strict=False):
        ax.annotate(str(c), (m, a), fontsize=7, textcoords="offset points", xytext=(3, -9))
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}: reliability", fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    plt.close(fig)


def plot(report: dict, sweep: list[dict], probs: np.ndarray, labels: np.ndarray, out: Path, title: str) -> None:
    """The three figures of a run: confusion, threshold vs coverage, reliability."""
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion(report, out, title)
    plot_threshold_coverage(sweep, report["at_default_threshold"]["threshold"], out, title)
    plot_reliability(probs, labels, out, title)


def evaluate_files(card: ModelCard, files: list[tuple[Path, str]], out: Path | None, title: str) -> dict:
    paths, logits, labels = predict_logits(card, files)
    probs = metrics.softmax(logits, card.temperature)
    report = metrics.summary(probs, labels, card.threshold)
    sweep = metrics.sweep(probs, labels)
    if out is not None:
        misplaced = misplaced_files(paths, probs, labels, card.threshold)
        plot(report, sweep, probs, labels, out, title)
        plot_misplaced(misplaced, out, title)
        saved = {"summary": report, "threshold_sweep": sweep, "misplaced_at_default_threshold": misplaced}
        (out / "metrics.json").write_text(json.dumps(saved, indent=2) + "\n")
    return report


def main(folder: Path, model: Path | None, out: Path | None) -> dict:
    card = ModelCard.load(resolve_card_path(model))
    files = labelled_files([folder], [])
    if not files:
        raise SystemExit(f"{folder}: no labelled images (expected cat/, dog/, other/ sub-folders)")
    report = evaluate_files(card, files, out, folder.name)
    print(json.dumps({k: report[k] for k in ("files", "accuracy", "cat_vs_dog_accuracy", "at_default_threshold")}, indent=2))
    if out is not None:
        print(f"plots, the threshold sweep and the photos out of place: {out}/ (misplaced.png, metrics.json)")
    return report
