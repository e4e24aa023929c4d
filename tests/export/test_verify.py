"""The gate's checks at their production thresholds, on constructed logits (every branch, no model needed)."""

from __future__ import annotations

import numpy as np

from export.verify import GateReport, Thresholds, evaluate_gate, length_sorted_batches, pad_batch

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
