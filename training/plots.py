"""PNG figures of an evaluation: confusion matrices and training curves (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib  # heavy, only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrices(
    matrices: Mapping[str, Sequence[Sequence[int]]], labels: Sequence[str], path: Path
) -> Path:
    """One panel per model (e.g. transformer vs baseline), rows = truth, columns = prediction, row-normalised
    color.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 3.8), squeeze=False)
    for ax, (title, matrix) in zip(axes[0], matrices.items(), strict=True):
        counts = [list(map(int, row)) for row in matrix]
        normalised = [[c / max(sum(row), 1) for c in row] for row in counts]
        ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        for i, row in enumerate(counts):
            for j, count in enumerate(row):
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    color="white" if normalised[i][j] > 0.5 else "black",
                )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(history: Mapping[str, Any], path: Path) -> Path:
    """Training loss and learning rate per optimizer step, validation macro-F1 per epoch."""
    plt = _pyplot()
    steps = history.get("steps", [])
    epochs = history.get("epochs", [])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot([s["step"] for s in steps], [s["loss"] for s in steps], marker=".")
    axes[0].set_title("train loss")
    axes[0].set_xlabel("optimizer step")
    axes[1].plot([s["step"] for s in steps], [s["lr"] for s in steps])
    axes[1].set_title("learning rate (base group)")
    axes[1].set_xlabel("optimizer step")
    axes[2].plot(
        [e["epoch"] for e in epochs], [e["val_macro_f1"] for e in epochs], marker="o", label="macro-F1"
    )
    axes[2].plot(
        [e["epoch"] for e in epochs], [e["val_accuracy"] for e in epochs], marker="s", label="accuracy"
    )
    axes[2].set_title("validation")
    axes[2].set_xlabel("epoch")
    axes[2].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
