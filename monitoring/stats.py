"""Two-sample statistics used by the drift report: PSI, chi-square and Kolmogorov-Smirnov.

Every comparison returns a :class:`FeatureDrift`. A feature counts as drifted only when the test is
significant (``p < alpha``) **and** the population stability index shows a material shift
(``psi >= psi_threshold``): with thousands of log lines a p-value alone flags shifts too small to matter,
and with a few dozen the PSI alone is noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats

# Smallest proportion used in PSI so that an empty bin does not make the index infinite.
PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class Thresholds:
    """When is a shift a drift? Defaults follow the usual PSI reading (0.1 moderate, 0.2+ significant)."""

    alpha: float = 0.01
    psi: float = 0.2
    numeric_bins: int = 10

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.psi <= 0.0:
            raise ValueError(f"psi threshold must be > 0, got {self.psi}")
        if self.numeric_bins < 2:
            raise ValueError(f"numeric_bins must be >= 2, got {self.numeric_bins}")


@dataclass
class FeatureDrift:
    """The comparison of one feature between the reference and the current window."""

    name: str
    kind: Literal["categorical", "numeric"]
    test: Literal["chi2", "ks"]
    statistic: float
    p_value: float
    psi: float
    drifted: bool
    n_reference: int
    n_current: int
    reference: dict[str, float] = field(default_factory=dict)
    current: dict[str, float] = field(default_factory=dict)
    note: str = ""
    #: numeric features: shares of each side in equal-width bins (for the report's charts), edges included
    histogram: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def psi(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> float:
    """Population stability index of two proportion vectors over the same bins."""
    ref = np.clip(np.asarray(reference, dtype=float), PSI_EPSILON, None)
    cur = np.clip(np.asarray(current, dtype=float), PSI_EPSILON, None)
    ref = ref / ref.sum()
    cur = cur / cur.sum()
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(float)


def compare_categorical(
    name: str,
    reference: Mapping[str, int],
    current: Mapping[str, int] | Iterable[str],
    thresholds: Thresholds,
    note: str = "",
) -> FeatureDrift:
    """Chi-square test of homogeneity plus PSI for a categorical feature.

    ``reference`` is given as counts (a training split is summarised that way in ``stats.json``); ``current``
    as counts or as the observed values.
    """
    if isinstance(current, Mapping):
        cur_counts = {str(k): int(v) for k, v in current.items()}
    else:
        cur_counts = {}
        for value in current:
            cur_counts[value] = cur_counts.get(value, 0) + 1
    categories = sorted(set(reference) | set(cur_counts))
    ref_vec = np.array([reference.get(c, 0) for c in categories], dtype=float)
    cur_vec = np.array([cur_counts.get(c, 0) for c in categories], dtype=float)
    n_ref, n_cur = int(ref_vec.sum()), int(cur_vec.sum())
    if n_ref == 0 or n_cur == 0:
        raise ValueError(f"feature {name!r}: nothing to compare (reference n={n_ref}, current n={n_cur})")
    if len(categories) < 2:
        statistic, p_value = 0.0, 1.0
    else:
        table = np.vstack([ref_vec, cur_vec])
        table = table[:, table.sum(axis=0) > 0]
        chi2 = stats.chi2_contingency(table, correction=False)
        statistic, p_value = float(chi2.statistic), float(chi2.pvalue)
    ref_p, cur_p = _proportions(ref_vec), _proportions(cur_vec)
    index = psi(ref_p, cur_p)
    return FeatureDrift(
        name=name,
        kind="categorical",
        test="chi2",
        statistic=statistic,
        p_value=p_value,
        psi=index,
        drifted=p_value < thresholds.alpha and index >= thresholds.psi,
        n_reference=n_ref,
        n_current=n_cur,
        reference={c: float(p) for c, p in zip(categories, ref_p, strict=True)},
        current={c: float(p) for c, p in zip(categories, cur_p, strict=True)},
        note=note,
    )


def quantile_cuts(reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior cut points at the reference's quantiles (deduplicated, so ties do not make empty bins)."""
    inner = np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(inner)


def binned_proportions(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin ``(-inf, c0], (c0, c1], ..., (c_last, inf)``."""
    index = np.searchsorted(cuts, values, side="left")
    counts = np.bincount(index, minlength=len(cuts) + 1).astype(float)
    return _proportions(counts)


def _summary(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(np.mean(values)),
        "p05": float(np.quantile(values, 0.05)),
        "p50": float(np.quantile(values, 0.5)),
        "p95": float(np.quantile(values, 0.95)),
    }


def histogram(reference: np.ndarray, current: np.ndarray, bins: int = 24) -> dict[str, list[float]]:
    """Both sides' shares in ``bins`` equal-width bins over the 0.5-99.5th percentiles of both (values outside
    fall into the end bins), so one chart shows the two shapes on one axis."""
    both = np.concatenate([reference, current])
    low, high = (float(v) for v in np.quantile(both, [0.005, 0.995]))
    if high <= low:
        high = low + (abs(low) or 1.0) * 1e-6 + 1e-9
    edges = np.linspace(low, high, bins + 1)

    def shares(values: np.ndarray) -> list[float]:
        index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
        return [float(v) for v in _proportions(np.bincount(index, minlength=bins).astype(float))]

    return {"edges": [float(e) for e in edges], "reference": shares(reference), "current": shares(current)}


def compare_numeric(
    name: str,
    reference: Sequence[float] | np.ndarray,
    current: Sequence[float] | np.ndarray,
    thresholds: Thresholds,
    note: str = "",
) -> FeatureDrift:
    """Two-sample Kolmogorov-Smirnov test plus PSI over the reference's quantile bins."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref = ref[np.isfinite(ref)]
    cur = cur[np.isfinite(cur)]
    if ref.size == 0 or cur.size == 0:
        raise ValueError(
            f"feature {name!r}: nothing to compare (reference n={ref.size}, current n={cur.size})"
        )
    ks = stats.ks_2samp(ref, cur)
    cuts = quantile_cuts(ref, thresholds.numeric_bins)
    index = psi(binned_proportions(ref, cuts), binned_proportions(cur, cuts))
    p_value = float(ks.pvalue)
    if math.isnan(p_value):
        p_value = 1.0
    return FeatureDrift(
        name=name,
        kind="numeric",
        test="ks",
        statistic=float(ks.statistic),
        p_value=p_value,
        psi=index,
        drifted=p_value < thresholds.alpha and index >= thresholds.psi,
        n_reference=int(ref.size),
        n_current=int(cur.size),
        reference=_summary(ref),
        current=_summary(cur),
        note=note,
        histogram=histogram(ref, cur),
    )
