"""PNG figures of an evaluation: confusion matrices and training curves (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib  # heavy, only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion_matrices(
    matrices: Mapping[str, Sequence[Sequence[int]]], labels: Sequence[str], path: Path
) -> Path:
    """One panel per model (e.g. transformer vs baseline): rows = truth, columns = prediction, counts."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 3.8), squeeze=False)
    for ax, (title, matrix) in zip(axes[0], matrices.items(), strict=True):
        display = ConfusionMatrixDisplay(np.asarray(matrix, dtype=np.int64), display_labels=list(labels))
        display.plot(ax=ax, cmap="Blues", colorbar=False)
        ax.set_title(title)
    return _save(plt, fig, path)


def plot_curves(history: Mapping[str, Any], path: Path) -> Path:
    """Training loss and learning rate per optimizer step, validation macro-F1 and accuracy per epoch."""
    plt = _pyplot()
    steps, epochs = history.get("steps", []), history.get("epochs", [])
    panels: list[tuple[str, Any, str, dict[str, str | None]]] = [
        ("train loss", steps, "step", {"loss": None}),
        ("learning rate (base group)", steps, "step", {"lr": None}),
        ("validation", epochs, "epoch", {"val_macro_f1": "macro-F1", "val_accuracy": "accuracy"}),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (title, rows, x, series) in zip(axes, panels, strict=True):
        for key, name in series.items():
            ax.plot([r[x] for r in rows], [r[key] for r in rows], marker=".", label=name)
        ax.set(title=title, xlabel="optimizer step" if x == "step" else x)
    axes[2].legend()
    return _save(plt, fig, path)
