"""Post-hoc decision and calibration: per-class logit bias, temperature, and the review band.

The served model answers ``scores = softmax((z + bias) / temperature)`` and ``label = argmax(z + bias)``
(docs/contracts.md, "calibration"). The three parts are fitted on validation logits, in this order:

1. ``bias`` (optional): per-class offsets chosen for validation macro-F1 (coordinate search, last class fixed
   at 0). It moves the decision, not the confidence.
2. ``temperature``: minimises the validation negative log-likelihood of ``softmax((z + bias) / T)``. It moves
   the confidence, not the decision.
3. ``review threshold``: the lowest confidence above which validation accuracy is at least the target; a
   ticket below it ``needs_review``.

numpy, scipy and scikit-learn: export, evaluation and analysis scripts share it; the server applies the result
from the manifest without importing this.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special
from scipy.optimize import minimize_scalar
from sklearn.metrics import f1_score

Array = np.ndarray

DEFAULT_TARGET_ACCURACY = 0.70
_BIAS_GRID = np.round(np.arange(-3.0, 3.0001, 0.1), 2)


def softmax(logits: Array) -> Array:
    return np.asarray(special.softmax(np.asarray(logits, dtype=np.float64), axis=1))


def macro_f1(y_true: Array, y_pred: Array, n_classes: int) -> float:
    """Macro-F1 over all ``n_classes`` (a class never predicted nor present counts as F1 0)."""
    return float(f1_score(y_true, y_pred, labels=list(range(n_classes)), average="macro", zero_division=0))


def fit_bias(logits: Array, y_true: Array, rounds: int = 3, grid: Array = _BIAS_GRID) -> Array:
    """Per-class logit offsets that maximise macro-F1 on (logits, y_true); the last class stays at 0.

    Coordinate search over a 0.1 grid; ties go to the smaller |offset| so that a flat optimum keeps the
    model's own decision.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y_true)
    k = z.shape[1]
    bias = np.zeros(k)
    for _ in range(rounds):
        changed = False
        for c in range(k - 1):
            best_value, best_score = bias[c], -1.0
            for value in sorted(grid, key=abs):
                trial = bias.copy()
                trial[c] = value
                score = macro_f1(y, np.argmax(z + trial, axis=1), k)
                if score > best_score + 1e-12:
                    best_value, best_score = value, score
            if best_value != bias[c]:
                bias[c] = best_value
                changed = True
        if not changed:
            break
    return bias


def fit_temperature(logits: Array, y_true: Array, bias: Array | None = None) -> float:
    """The temperature in [0.05, 20] minimising the NLL of ``softmax((logits + bias) / T)``."""
    z = np.asarray(logits, dtype=np.float64) + (0.0 if bias is None else np.asarray(bias))
    y = np.asarray(y_true)

    def nll(log_t: float) -> float:
        p = softmax(z / np.exp(log_t))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def expected_calibration_error(probs: Array, y_true: Array, n_bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins (the usual definition, Guo et al. 2017)."""
    p = np.asarray(probs)
    return top_label_ece(p.max(axis=1), p.argmax(axis=1) == np.asarray(y_true), n_bins)


def top_label_ece(confidence: Array, correct: Array, n_bins: int = 15) -> float:
    """ECE from each prediction's confidence and whether it was right."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(ok[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def coverage_at_accuracy(
    confidence: Array, correct: Array, target: float = DEFAULT_TARGET_ACCURACY
) -> tuple[float, float]:
    """(coverage, threshold): the largest most-confident share whose accuracy is >= ``target``.

    ``threshold`` is the confidence of the least confident ticket kept (inf when no share qualifies, so that
    every ticket needs review).
    """
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return 0.0, float("inf")
    order = np.argsort(-conf, kind="stable")
    running = np.cumsum(ok[order]) / np.arange(1, conf.size + 1)
    # only cut between distinct confidences: a threshold keeps every ticket at or above it
    distinct = np.r_[conf[order][1:] < conf[order][:-1], True]
    qualifying = np.flatnonzero((running >= target) & distinct)
    if qualifying.size == 0:
        return 0.0, float("inf")
    last = int(qualifying[-1])
    return float((last + 1) / conf.size), float(conf[order][last])


@dataclass
class Calibration:
    """What the manifest carries (``calibration`` and ``review`` blocks) and how it is applied."""

    temperature: float = 1.0
    bias: list[float] = field(default_factory=list)
    review_threshold: float | None = None
    target_accuracy: float = DEFAULT_TARGET_ACCURACY
    fitted_on: str = "val"
    n: int = 0

    def scores(self, logits: Array) -> Array:
        z = np.asarray(logits, dtype=np.float64)
        bias = np.asarray(self.bias) if self.bias else 0.0
        return softmax((z + bias) / self.temperature)

    def needs_review(self, logits: Array) -> Array:
        if self.review_threshold is None:
            return np.zeros(len(logits), dtype=bool)
        return np.asarray(self.scores(logits).max(axis=1) < self.review_threshold)

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "calibration": {
                "temperature": round(self.temperature, 6),
                "bias": [round(float(b), 6) for b in self.bias],
                "fitted_on": self.fitted_on,
                "n": self.n,
            }
        }
        if self.review_threshold is not None:
            out["review"] = {
                "threshold": round(self.review_threshold, 6),
                "target_accuracy": self.target_accuracy,
            }
        return out


def fit_calibration(
    logits: Array,
    y_true: Sequence[int] | Array,
    *,
    tune_bias: bool = True,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
    fitted_on: str = "val",
) -> Calibration:
    """Fit bias (optional), then temperature, then the review threshold, all on the same validation logits."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y_true)
    bias = fit_bias(z, y) if tune_bias else np.zeros(z.shape[1])
    temperature = fit_temperature(z, y, bias)
    calibration = Calibration(
        temperature=temperature,
        bias=[float(b) for b in bias],
        target_accuracy=target_accuracy,
        fitted_on=fitted_on,
        n=len(y),
    )
    probs = calibration.scores(z)
    _, threshold = coverage_at_accuracy(probs.max(axis=1), probs.argmax(axis=1) == y, target_accuracy)
    calibration.review_threshold = min(threshold, 1.0) if np.isfinite(threshold) else 1.0
    return calibration


def calibration_report(
    logits: Array, y_true: Sequence[int] | Array, calibration: Calibration, target: float | None = None
) -> dict[str, float]:
    """ECE, macro-F1, accuracy and coverage at the target accuracy, before and after ``calibration``."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y_true)
    target = calibration.target_accuracy if target is None else target
    out: dict[str, float] = {}
    for name, probs in (("raw", softmax(z)), ("calibrated", calibration.scores(z))):
        pred = probs.argmax(axis=1)
        coverage, _ = coverage_at_accuracy(probs.max(axis=1), pred == y, target)
        out[f"{name}_ece"] = expected_calibration_error(probs, y)
        out[f"{name}_macro_f1"] = macro_f1(y, pred, z.shape[1])
        out[f"{name}_accuracy"] = float((pred == y).mean())
        out[f"{name}_coverage_at_{round(target * 100)}"] = coverage
    if calibration.review_threshold is not None:
        probs = calibration.scores(z)
        kept = probs.max(axis=1) >= calibration.review_threshold
        out["review_band_coverage"] = float(kept.mean())
        out["review_band_accuracy"] = float((probs.argmax(axis=1) == y)[kept].mean()) if kept.any() else 0.0
    return out
