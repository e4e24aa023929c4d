"""Deterministic train/val/test split: near-duplicate groups kept whole, stratified on label x language.

Two things make a split honest on this dataset (docs/data.md, "Splits"):

- **Near-duplicate groups.** Exact dedupe is not enough: the LLM-written tickets come in templated variants
  (in the five-language file 29% of tickets have a TF-IDF neighbour at cosine >= 0.5, and such neighbours
  share the label 96% of the time). A group of tickets linked by cosine >= ``group_threshold`` is never
  spread over two splits, so the test split measures generalisation rather than recall of a sibling.
- **Whole files held out.** ``test_files`` sends every row of the matching source files to test (the
  cross-file yardstick: train on the en/de files, test on the five-language one).

Hand-rolled rather than sklearn's ``StratifiedGroupKFold``, which neither takes fractions nor keeps a stratum
too small for a val/test share in train: here every label seen at all is seen in training.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

SPLITS = ("train", "val", "test")


def near_duplicate_groups(texts: Sequence[str], threshold: float | None, chunk: int = 2048) -> np.ndarray:
    """Group ids (0..k-1): texts linked by a chain of word TF-IDF cosines >= ``threshold`` share one.

    ``threshold`` None (or >= 1) puts every text in its own group. Sparse products in row chunks keep memory
    at O(chunk x n) for the tens of thousands of tickets of the full dataset.
    """
    n = len(texts)
    if threshold is None or threshold >= 1.0 or n < 2:
        return np.arange(n)
    from scipy.sparse import coo_matrix

    matrix = TfidfVectorizer(analyzer="word", sublinear_tf=True, min_df=1).fit_transform(list(texts))
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for start in range(0, n, chunk):
        block = (matrix[start : start + chunk] @ matrix.T).tocoo()
        keep = (block.data >= threshold) & (block.row + start != block.col)
        rows.append(block.row[keep] + start)
        cols.append(block.col[keep])
    row = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(row), dtype=np.int8), (row, col)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels)


def held_out_files(sources: pd.Series, patterns: Sequence[str]) -> pd.Series:
    """True for rows whose source file name matches one of ``patterns`` (fnmatch on the file name)."""
    if not patterns:
        return pd.Series(False, index=sources.index)
    names = sources.map(lambda source: str(source).replace("\\", "/").rsplit("/", 1)[-1])
    return names.map(lambda name: any(fnmatch.fnmatch(name, pattern) for pattern in patterns)).astype(bool)


def stratified_split(
    frame: pd.DataFrame,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    strata: tuple[str, ...],
    groups: np.ndarray | None = None,
    test_mask: pd.Series | None = None,
) -> pd.Series:
    """Return a Series (same index as ``frame``) naming each row's split.

    Rows under ``test_mask`` go to test; the others are split by group: a group is assigned whole, in the
    stratum of its first row, until each stratum's val/test shares (rounded) are filled.
    """
    rng = np.random.default_rng(seed)
    assignment = pd.Series("train", index=frame.index, dtype=object)
    if test_mask is not None and bool(test_mask.any()):
        assignment[test_mask.to_numpy()] = "test"
        rest = frame[~test_mask.to_numpy()]
        rest_groups = None if groups is None else np.asarray(groups)[~test_mask.to_numpy()]
        # val is then ``val_fraction`` of the remaining rows; test is the held-out files alone
        inner = stratified_split(rest, val_fraction, 0.0, seed, strata, rest_groups)
        assignment.loc[inner.index] = inner
        return assignment.astype(str)
    group_of = pd.Series(np.arange(len(frame)) if groups is None else np.asarray(groups), index=frame.index)
    first = frame.assign(_group=group_of).groupby("_group", sort=True).head(1)
    stratum_of_group = first.set_index("_group")[list(strata)].apply(tuple, axis=1)
    members = group_of.groupby(group_of).groups
    for stratum in sorted(set(stratum_of_group)):
        group_ids = stratum_of_group.index[stratum_of_group == stratum].to_numpy()
        order = rng.permutation(group_ids)
        sizes = np.array([len(members[g]) for g in order])
        n = int(sizes.sum())
        n_test = int(np.floor(n * test_fraction + 0.5))
        n_val = int(np.floor(n * val_fraction + 0.5))
        filled = {"test": 0, "val": 0}
        quota = {"test": n_test, "val": n_val}
        # the last group always stays in train, so every stratum keeps at least one training row; a group goes
        # to a split only while that keeps the split within half a group of its quota (big groups stay put)
        for group_id, size in zip(order[:-1], sizes[:-1], strict=True):
            for target in ("test", "val"):
                if filled[target] + size / 2 <= quota[target]:
                    assignment.loc[members[group_id]] = target
                    filled[target] += int(size)
                    break
    return assignment.astype(str)
