"""Classification metrics shared by training (validation), evaluation and the baseline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    labels: Sequence[str],
    languages: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, per-language macro-F1 and the confusion
    matrix.

    ``y_true``/``y_pred`` are label ids (indices into ``labels``). Macro-F1 averages over every label that
    occurs in the truth or the predictions of the (sub)set, so a class that is never predicted counts as F1 0
    instead of silently disappearing, while a language without, say, ``low`` tickets is not punished for them.
    """
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=ids, average=None, zero_division=0
    )
    per_class = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    per_language: dict[str, float] = {}
    if languages is not None:
        langs = np.asarray(list(languages), dtype=object)
        for lang in sorted(set(langs.tolist())):
            mask = langs == lang
            per_language[str(lang)] = _macro_f1(true[mask], pred[mask])
    return {
        "n": int(true.size),
        "accuracy": float(accuracy_score(true, pred)) if true.size else 0.0,
        "macro_f1": _macro_f1(true, pred),
        "per_class": per_class,
        "per_language_macro_f1": per_language,
        "confusion_matrix": confusion_matrix(true, pred, labels=ids).tolist(),
    }


def _macro_f1(true: np.ndarray, pred: np.ndarray) -> float:
    present = sorted(set(true.tolist()) | set(pred.tolist()))
    if not present:
        return 0.0
    return float(f1_score(true, pred, labels=present, average="macro", zero_division=0))
