"""The gate's checks at their production thresholds, on constructed logits (every branch, no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from export.verify import (
    Check,
    GateReport,
    Thresholds,
    evaluate_gate,
    flip_rate_lower_bound,
    length_sorted_batches,
    loosened_thresholds,
    min_examples_for_f1_drop,
    min_non_ties_for_agreement,
    pad_batch,
    paired_bootstrap_f1_drop,
)

LABELS = ["low", "medium", "high"]
TH = Thresholds()


def confident_logits(classes: np.ndarray, margin: float = 5.0) -> np.ndarray:
    logits = np.zeros((len(classes), 3), dtype=np.float32)
    logits[np.arange(len(classes)), classes] = margin
    return logits


def gate(
    fp32: np.ndarray,
    int8: np.ndarray | None,
    y: np.ndarray,
    langs: list[str],
    torch: np.ndarray | None = None,
) -> GateReport:
    return evaluate_gate(
        torch_logits=fp32 if torch is None else torch,
        fp32_logits=fp32,
        int8_logits=int8,
        y_true=y,
        languages=langs,
        labels=LABELS,
        thresholds=TH,
    )


def test_identical_models_pass_every_check() -> None:
    y = np.arange(120) % 3
    logits = confident_logits(y)
    report = gate(logits, logits.copy(), y, ["en"] * 60 + ["de"] * 60)
    assert report.passed
    assert report.metrics["int8"]["macro_f1"] == 1.0
    assert report.metrics["agreement"]["raw"] == 1.0
    names = [c.name for c in report.checks]
    assert "int8 macro-F1 drop (points), en" in names and "int8 macro-F1 drop (points), de" in names


def test_torch_logit_difference_fails_with_the_excess() -> None:
    y = np.arange(30) % 3
    fp32 = confident_logits(y)
    torch = fp32.copy()
    torch[4, 0] += 0.0025
    report = gate(fp32, None, y, ["en"] * 30, torch=torch)
    failed = report.failed_checks()
    assert [c.name for c in failed] == ["fp32 vs torch max abs logit diff"]
    assert failed[0].value is not None and abs(failed[0].value - 0.0025) < 1e-6
    assert "exceeds the limit by 0.0015" in failed[0].detail


def test_argmax_flip_vs_torch_fails_even_inside_the_tolerance() -> None:
    y = np.zeros(10, dtype=np.int64)
    fp32 = np.zeros((10, 3), dtype=np.float32)
    fp32[:, 0] = 1e-4  # a tie broken by 1e-4: within 1e-3, but the argmax moves
    torch = np.zeros((10, 3), dtype=np.float32)
    torch[:, 1] = 1e-4
    report = gate(fp32, None, y, ["en"] * 10, torch=torch)
    assert [c.name for c in report.failed_checks()] == ["fp32 vs torch argmax mismatches"]


def test_f1_drop_in_one_large_language_fails_although_overall_passes() -> None:
    # 60 de + 600 en; int8 breaks 6 German examples: the overall drop stays under 1 point, German's does not.
    y = np.arange(660) % 3
    langs = ["de"] * 60 + ["en"] * 600
    fp32 = confident_logits(y)
    int8 = fp32.copy()
    broken = np.arange(6)
    int8[broken] = confident_logits((y[broken] + 1) % 3)
    report = gate(fp32, int8, y, langs)
    failed = {c.name: c for c in report.failed_checks()}
    assert "int8 macro-F1 drop (points), de" in failed
    assert "int8 macro-F1 drop (points), overall" not in failed
    assert (failed["int8 macro-F1 drop (points), de"].value or 0.0) > 1.0


def test_small_languages_are_reported_but_not_gated() -> None:
    y = np.arange(40) % 3
    fp32 = confident_logits(y)
    int8 = fp32.copy()
    int8[:1] = confident_logits(np.array([(y[0] + 1) % 3]))
    report = gate(fp32, int8, y, ["pt"] * 40)
    assert not any(c.name.endswith(", pt") for c in report.checks)
    assert "pt" in report.metrics["int8"]["per_language"]


def test_near_ties_are_excluded_from_the_agreement_gate_but_counted_raw() -> None:
    y = np.arange(200) % 3
    fp32 = confident_logits(y)
    fp32[:20] = 0.0
    fp32[np.arange(20), y[:20]] = 0.01  # 20 near-ties (top1 - top2 probability well under 0.1)
    int8 = fp32.copy()
    int8[np.arange(20), (y[:20] + 1) % 3] = 0.02  # int8 flips all of them
    report = gate(fp32, int8, y, ["en"] * 200)
    agreement = report.metrics["agreement"]
    assert agreement["n_non_tie"] == 180
    assert agreement["non_tie"] == 1.0
    assert agreement["raw"] == 0.9
    check = next(c for c in report.checks if c.name == "int8 vs fp32 non-tie argmax agreement")
    assert check.passed


def test_confident_flips_fail_the_agreement_gate() -> None:
    y = np.arange(300) % 3
    fp32 = confident_logits(y)
    int8 = fp32.copy()
    flipped = np.arange(0, 300, 50)  # 6 of 300 = 98% agreement, one per class and spread: F1 drop shows too
    int8[flipped] = confident_logits((y[flipped] + 1) % 3)
    report = gate(fp32, int8, y, ["en"] * 300)
    check = next(c for c in report.checks if c.name == "int8 vs fp32 non-tie argmax agreement")
    assert not check.passed
    assert check.value is not None and abs(check.value - 0.98) < 1e-9
    assert "short of the limit by 0.01" in check.detail
    assert "FAILED" in report.to_markdown()


def test_length_sorted_batches_cover_every_index_once() -> None:
    lengths = [5, 1, 9, 3, 3, 7, 2]
    batches = length_sorted_batches(lengths, 3)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert [lengths[i] for i in batches[0]] == [1, 2, 3]


def test_pad_batch_masks_the_padding() -> None:
    feed = pad_batch([[2, 5, 3], [2, 3]], [[0, 0, 0], [0, 0]], pad_id=0)
    assert feed["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert feed["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert feed["input_ids"].dtype == np.int64


# ------------------------------------------------------------------- statistics at small n (docs/export.md)


def check_named(report: GateReport, name: str) -> Check:
    return next(c for c in report.checks if c.name == name)


AGREEMENT = "int8 vs fp32 non-tie argmax agreement"
F1_OVERALL = "int8 macro-F1 drop (points), overall"


def test_minimum_n_follows_the_thresholds() -> None:
    assert min_non_ties_for_agreement(0.99) == 100  # one flip in 100 is exactly 99%
    assert min_non_ties_for_agreement(0.95) == 20
    assert min_examples_for_f1_drop(1.0) == 200  # one flip ~ 100/n points <= half the limit
    assert min_examples_for_f1_drop(2.0) == 100


def test_one_confident_flip_in_30_is_not_enough_evidence_at_small_n() -> None:
    # one flip in 30: observed agreement 0.967 and an F1 drop of several points, but n is far below what the
    # thresholds need; the exact bound (flip rate >= 0.0017) and the bootstrap lower bound (0) do not fail it
    y = np.arange(30) % 3
    fp32 = confident_logits(y)
    int8 = fp32.copy()
    int8[:1] = confident_logits(np.array([(y[0] + 1) % 3]))
    report = gate(fp32, int8, y, ["en"] * 30)
    agreement, f1 = check_named(report, AGREEMENT), check_named(report, F1_OVERALL)
    assert agreement.passed and agreement.value is not None and agreement.value < 0.99
    assert "below 100 non-ties the check cannot detect a 1% flip rate" in agreement.detail
    assert f1.passed and f1.value is not None and f1.value > 1.0
    assert "n < 200" in f1.detail
    power = report.metrics["agreement"]["power"]
    assert power["fails_from_flips"] == 2 and power["p_catch_allowed_rate"] < 0.05
    text = report.to_markdown()
    assert "## What the int8 checks can detect at this n" in text
    assert "it cannot detect a 1% flip rate" in text
    assert "only a drop whose 95% lower bound exceeds it" in text


def test_several_confident_flips_at_small_n_fail_both_checks() -> None:
    y = np.arange(30) % 3
    fp32 = confident_logits(y)
    int8 = fp32.copy()
    broken = np.arange(0, 30, 5)  # 6 of 30, two per class
    int8[broken] = confident_logits((y[broken] + 1) % 3)
    report = gate(fp32, int8, y, ["en"] * 30)
    agreement, f1 = check_named(report, AGREEMENT), check_named(report, F1_OVERALL)
    assert not agreement.passed and "flip rate significantly above 0.01" in agreement.detail
    assert not f1.passed and "(lower bound)" in f1.detail
    assert report.metrics["f1_drop"]["overall"]["lower"] > 1.0


def test_from_100_non_ties_the_observed_agreement_is_gated() -> None:
    # 2 flips in 150 (98.7%): the exact bound alone would pass it (flip rate >= 0.0024), the point rule not
    y = np.arange(150) % 3
    fp32 = confident_logits(y)
    int8 = fp32.copy()
    int8[[0, 75]] = confident_logits((y[[0, 75]] + 1) % 3)
    report = gate(fp32, int8, y, ["en"] * 150)
    agreement = check_named(report, AGREEMENT)
    assert not agreement.passed and "short of the limit" in agreement.detail
    assert flip_rate_lower_bound(2, 150, 0.95) < 0.01


def test_clopper_pearson_bound_matches_the_closed_form() -> None:
    # one flip in n: the 95% lower bound is 1 - 0.95 ** (1/n)
    for n in (10, 30, 100):
        assert flip_rate_lower_bound(1, n, 0.95) == pytest.approx(1 - 0.95 ** (1 / n), rel=1e-9)
    assert flip_rate_lower_bound(0, 50, 0.95) == 0.0


def test_paired_bootstrap_is_seeded_and_paired() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 80)
    a = y.copy()
    b = y.copy()
    b[:8] = (y[:8] + 1) % 3
    first = paired_bootstrap_f1_drop(y, a, b, 3, 500, seed=0)
    assert np.array_equal(first, paired_bootstrap_f1_drop(y, a, b, 3, 500, seed=0))
    assert (first > 0).all()  # b only ever loses correct predictions: every paired resample sees a drop
    same = paired_bootstrap_f1_drop(y, a, a.copy(), 3, 500, seed=0)
    assert np.array_equal(same, np.zeros(500))


def test_loosened_thresholds_are_named() -> None:
    assert loosened_thresholds(Thresholds()) == []
    assert loosened_thresholds(Thresholds(max_f1_drop_points=2.0, min_non_tie_agreement=0.95)) == [
        "max_f1_drop_points 2 (production 1)",
        "min_non_tie_agreement 0.95 (production 0.99)",
    ]
    assert loosened_thresholds(Thresholds(max_logit_diff=1e-4)) == []  # stricter is not looser
    report = gate(confident_logits(np.arange(9) % 3), None, np.arange(9) % 3, ["en"] * 9)
    report.loosened = ["quality floor waived (--allow-below-baseline)"]
    assert report.verdict() == "PASSED WITH A LOOSENED GATE"
    assert report.to_manifest()["production"] is False
    assert "Not the production gate: quality floor waived" in report.to_markdown()
