"""Metrics: macro-F1 counts a never-predicted class as 0; per-language macro-F1 only over present classes."""

from __future__ import annotations

import pytest

from quality.metrics import classification_metrics

LABELS = ["low", "medium", "high"]


def test_perfect_predictions() -> None:
    m = classification_metrics([0, 1, 2, 2], [0, 1, 2, 2], LABELS, ["en", "en", "de", "de"])
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0
    assert m["per_language_macro_f1"] == {"de": 1.0, "en": 1.0}
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]
    assert m["per_class"]["high"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}


def test_never_predicted_class_drags_macro_f1_down() -> None:
    # `low` is never predicted: its F1 is 0 and macro-F1 averages it in
    m = classification_metrics([0, 0, 1, 1, 2, 2], [1, 1, 1, 1, 2, 2], LABELS)
    assert m["per_class"]["low"]["recall"] == 0.0
    assert m["per_class"]["medium"]["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0 + 2 / 3 + 1) / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)


def test_per_language_ignores_classes_absent_from_that_language() -> None:
    m = classification_metrics([1, 2, 0, 1], [1, 2, 0, 0], LABELS, ["de", "de", "en", "en"])
    assert m["per_language_macro_f1"]["de"] == 1.0  # no `low` in German: not counted as a 0
    assert m["per_language_macro_f1"]["en"] == pytest.approx((2 / 3 + 0) / 2)
