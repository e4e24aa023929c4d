"""TF-IDF (word + character n-grams) + logistic regression: the bar a transformer has to clear to earn its
cost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from quality.metrics import classification_metrics

log = logging.getLogger(__name__)


def build_baseline(seed: int = 42) -> Pipeline:
    """Word 1-2-grams and char_wb 2-5-grams (robust to German compounds and typos), balanced class weights."""
    features = FeatureUnion(
        [
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
        ]
    )
    classifier = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, random_state=seed)
    return Pipeline([("tfidf", features), ("logreg", classifier)])


@dataclass
class BaselineResult:
    metrics: dict[str, dict[str, Any]]  # split name -> classification_metrics(...)
    fit_seconds: float


def run_baseline(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    eval_sets: dict[str, tuple[Sequence[str], Sequence[int], Sequence[str]]],
    labels: Sequence[str],
    seed: int = 42,
) -> BaselineResult:
    """Fit on the training split and score every evaluation split (name -> (texts, label ids, languages))."""
    start = time.perf_counter()
    pipeline = build_baseline(seed)
    pipeline.fit(list(train_texts), np.asarray(train_labels))
    fit_seconds = time.perf_counter() - start
    log.info("TF-IDF baseline fitted on %d texts in %.1f s", len(train_texts), fit_seconds)
    metrics = {
        name: classification_metrics(y, pipeline.predict(list(texts)), labels, langs)
        for name, (texts, y, langs) in eval_sets.items()
    }
    return BaselineResult(metrics=metrics, fit_seconds=fit_seconds)
