"""Bias, temperature and review band (quality/calibration.py) on logits whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from quality.calibration import (
    Calibration,
    calibration_report,
    coverage_at_accuracy,
    expected_calibration_error,
    fit_bias,
    fit_calibration,
    fit_temperature,
    macro_f1,
    softmax,
)


def _sample(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits z and labels drawn from softmax(z / temperature): the true temperature is known."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, size=(n, 3))
    p = softmax(z / temperature)
    y = np.array([rng.choice(3, p=row) for row in p])
    return z, y, p


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_is_recovered(true_t: float) -> None:
    z, y, _ = _sample(6000, true_t)
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.1)


def test_temperature_scaling_cuts_the_ece_of_overconfident_logits() -> None:
    z, y, _ = _sample(4000, 2.5, seed=1)
    t = fit_temperature(z, y)
    assert expected_calibration_error(softmax(z), y) > 0.1
    assert expected_calibration_error(softmax(z / t), y) < 0.03


def test_bias_undoes_a_shift_that_starves_a_class() -> None:
    z, y, _ = _sample(3000, 1.0, seed=2)
    shifted = z + np.array([-1.5, 0.0, 1.0])  # class 0 is rarely predicted any more
    before = macro_f1(y, shifted.argmax(1), 3)
    bias = fit_bias(shifted, y)
    after = macro_f1(y, (shifted + bias).argmax(1), 3)
    assert bias[-1] == 0.0 and bias[0] > 1.0
    assert after > before + 0.05
    assert after == pytest.approx(macro_f1(y, z.argmax(1), 3), abs=0.02)


def test_bias_stays_zero_when_the_decision_is_already_best() -> None:
    y = np.array([0, 1, 2] * 50)
    z = np.eye(3)[y] * 5.0
    assert list(fit_bias(z, y)) == [0.0, 0.0, 0.0]


def test_coverage_at_accuracy_on_a_hand_checked_case() -> None:
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([1, 1, 0, 1, 0])
    # prefixes: 1/1, 2/2, 2/3, 3/4=0.75, 3/5 -> the largest share with accuracy >= 0.7 is the top four
    assert coverage_at_accuracy(confidence, correct, 0.7) == (0.8, 0.6)
    assert coverage_at_accuracy(confidence, correct, 1.0) == (0.4, 0.8)
    assert coverage_at_accuracy(confidence, np.zeros(5), 0.7) == (0.0, float("inf"))


def test_coverage_never_cuts_between_equal_confidences() -> None:
    confidence = np.array([0.9, 0.7, 0.7, 0.7])
    correct = np.array([1, 1, 0, 0])
    assert coverage_at_accuracy(confidence, correct, 0.7) == (0.25, 0.9)


def test_fit_calibration_keeps_the_target_accuracy_above_the_threshold_and_round_trips() -> None:
    z, y, _ = _sample(3000, 2.0, seed=3)
    calibration = fit_calibration(z, y, target_accuracy=0.7)
    probs = calibration.scores(z)
    kept = probs.max(1) >= calibration.review_threshold
    assert (probs.argmax(1) == y)[kept].mean() >= 0.7
    assert 0 < kept.mean() < 1
    assert (calibration.needs_review(z) == ~kept).all()
    manifest = calibration.to_manifest()
    again = Calibration(
        temperature=manifest["calibration"]["temperature"],
        bias=manifest["calibration"]["bias"],
        review_threshold=manifest["review"]["threshold"],
    )
    assert np.allclose(again.scores(z), probs, atol=1e-5)
    report = calibration_report(z, y, calibration)
    assert report["calibrated_ece"] < report["raw_ece"]
    assert report["review_band_accuracy"] >= 0.7
