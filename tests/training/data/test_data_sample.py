"""The embedded sample: written by the project's own generator, reproducible byte for byte, learnable."""

from __future__ import annotations

import pandas as pd
import pytest

from training.data import PreparedData
from training.data.config import PROJECT_ROOT
from training.data.sample import DEFAULT_SEED, SAMPLE_COLUMNS, SAMPLE_PATH, generate_sample, render_csv


def test_committed_sample_is_the_generator_output() -> None:
    committed = (PROJECT_ROOT / SAMPLE_PATH).read_bytes()
    assert committed == render_csv(generate_sample(DEFAULT_SEED)).encode("utf-8"), (
        "data/sample/tickets.csv differs from the generator: "
        "run `python -m training.data sample` and commit it"
    )


def test_sample_covers_every_language_and_priority() -> None:
    frame = pd.read_csv(PROJECT_ROOT / SAMPLE_PATH, dtype=str, keep_default_na=False)
    assert tuple(frame.columns) == SAMPLE_COLUMNS
    assert len(frame) == 300
    counts = frame.groupby(["language", "priority"]).size()
    assert counts.to_dict() == {
        (lang, prio): n
        for lang in ("de", "en", "es", "fr", "pt")
        for prio, n in (("high", 21), ("low", 18), ("medium", 21))
    }
    assert frame["body"].is_unique
    assert frame["body"].str.contains("\n").all()  # real newlines inside quoted fields
    assert (frame["subject"] == "").sum() > 0  # some tickets without a subject, as in the real data


def test_another_seed_gives_another_sample() -> None:
    assert render_csv(generate_sample(1)) != render_csv(generate_sample(DEFAULT_SEED))


@pytest.mark.slow
def test_priority_is_learnable_from_the_text(sample_prepared: PreparedData) -> None:
    """A bag-of-words baseline must beat chance by far, or the quickstart's predictions would be noise."""
    pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1)
    features = vectorizer.fit_transform(sample_prepared.train["text"])
    model = LogisticRegression(max_iter=1000).fit(features, sample_prepared.train["label_id"])
    held_out = pd.concat([sample_prepared.val, sample_prepared.test])
    predicted = model.predict(vectorizer.transform(held_out["text"]))
    assert f1_score(held_out["label_id"], predicted, average="macro") > 0.8
