"""Deterministic train/val/test split, stratified on label x language.

Hand-rolled rather than sklearn's ``train_test_split(stratify=...)``, which refuses strata with a single row:
here a stratum too small for a val/test share simply stays in train, so every label seen at all is seen in
training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def stratified_split(
    frame: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int, strata: tuple[str, ...]
) -> pd.Series:
    """Return a Series (same index as ``frame``) naming each row's split."""
    rng = np.random.default_rng(seed)
    assignment = pd.Series("train", index=frame.index, dtype=object)
    for _, group in sorted(frame.groupby(list(strata), sort=True), key=lambda item: item[0]):
        order = rng.permutation(group.index.to_numpy())
        n = len(order)
        n_test = int(np.floor(n * test_fraction + 0.5))
        n_val = int(np.floor(n * val_fraction + 0.5))
        if n_test + n_val >= n:  # keep at least one row of every stratum in train
            n_test = min(n_test, max(n - 1, 0))
            n_val = max(min(n_val, n - 1 - n_test), 0)
        assignment.loc[order[:n_test]] = "test"
        assignment.loc[order[n_test : n_test + n_val]] = "val"
    return assignment.astype(str)
