"""Near-duplicate groups never span two splits; held-out files go to test whole (training/data/split.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data.split import held_out_files, near_duplicate_groups, stratified_split

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "tickets"


def _variants(stem: str, n: int) -> list[str]:
    return [
        f"{stem} the printer on floor {i} shows error code E{i} since this morning please advise"
        for i in range(n)
    ]


def test_templated_variants_share_a_group_and_unrelated_texts_do_not() -> None:
    texts = [
        *_variants("urgent", 3),
        "Our invoice for March lists the premium plan twice; please refund the duplicate charge.",
        "Wie kann ich mein Passwort zurücksetzen? Die E-Mail kommt nicht an.",
    ]
    groups = near_duplicate_groups(texts, threshold=0.6)
    assert groups[0] == groups[1] == groups[2]
    assert len({groups[0], groups[3], groups[4]}) == 3
    assert list(near_duplicate_groups(texts, threshold=None)) == list(range(5))


def _frame(n_groups: int, size: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, groups = [], []
    for g in range(n_groups):
        label = ["low", "medium", "high"][g % 3]
        language = ["en", "de"][rng.integers(2)]
        for _ in range(int(rng.integers(1, size + 1))):
            rows.append({"label": label, "language": language, "source": "a.csv"})
            groups.append(g)
    return pd.DataFrame(rows), np.asarray(groups)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_group_spans_two_splits_and_fractions_hold(seed: int) -> None:
    frame, groups = _frame(400, 4, seed)
    split = stratified_split(frame, 0.1, 0.1, seed, ("label", "language"), groups=groups)
    per_group = pd.Series(split.to_numpy()).groupby(groups).nunique()
    assert (per_group == 1).all()
    counts = split.value_counts()
    for name in ("val", "test"):  # within half a group (<= 2 rows) of the quota in each of the 6 strata
        assert abs(counts[name] - 0.1 * len(frame)) <= 6 * 2 + 6
    for _, stratum in frame.assign(split=split).groupby(["label", "language"]):
        assert (stratum["split"] == "train").any()


def test_the_split_is_deterministic_for_a_seed() -> None:
    frame, groups = _frame(200, 3)
    a = stratified_split(frame, 0.1, 0.1, 7, ("label", "language"), groups=groups)
    b = stratified_split(frame, 0.1, 0.1, 7, ("label", "language"), groups=groups)
    c = stratified_split(frame, 0.1, 0.1, 8, ("label", "language"), groups=groups)
    assert a.equals(b) and not a.equals(c)


def test_held_out_files_go_to_test_whole_and_val_comes_from_the_rest() -> None:
    frame, groups = _frame(300, 2)
    frame["source"] = np.where(np.arange(len(frame)) % 4 == 0, "helpdesk_customer_tickets.csv", "aa.csv")
    mask = held_out_files(frame["source"], ["helpdesk_customer_tickets*"])
    split = stratified_split(frame, 0.1, 0.0, 0, ("label", "language"), groups=groups, test_mask=mask)
    assert (split[mask] == "test").all()
    assert not (split[~mask] == "test").any()
    assert 0.05 < (split[~mask] == "val").mean() < 0.15


@pytest.mark.real_data
def test_cross_file_prepare_tests_on_every_helpdesk_row(tmp_path: Path) -> None:
    if not (SHARED / "helpdesk_customer_tickets.csv").is_file():
        pytest.skip(f"real ticket files not found in {SHARED}")
    from training.data import prepare
    from training.data.config import compose

    cfg = compose("prepare", ["data=crossfile", f"data.output_dir={tmp_path}"])
    prepared = prepare(cfg.data)
    assert len(prepared.test) == 561 and set(prepared.test["source"]) == {"helpdesk_customer_tickets.csv"}
    assert "helpdesk_customer_tickets.csv" not in set(prepared.train["source"]) | set(prepared.val["source"])
    assert set(prepared.test["language"]) == {"en", "de", "es", "fr", "pt"}
    # no val ticket has a near-duplicate (cosine >= 0.6) in train
    both = pd.concat([prepared.train, prepared.val], ignore_index=True)
    groups = near_duplicate_groups(both["body"].tolist(), 0.6)
    train_groups = set(groups[: len(prepared.train)])
    assert not train_groups & set(groups[len(prepared.train) :])
