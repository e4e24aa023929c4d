"""benchmarks/extra_data_screen.py on the embedded sample: mapped labels, the leak filter, both baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.extra_data_screen import extra_rows, main
from training.data import PreparedData


def _extra_file(tmp_path: Path, prepared: PreparedData) -> Path:
    """Six new tickets (two with the five-level labels), one copy of a test ticket, one unknown label."""
    rows = [
        {
            "subject": f"Neues Thema {i}",
            "body": f"Ein ganz anderer Text über Rechnung {i} und Zahlung",
            "priority": p,
        }
        for i, p in enumerate(["low", "medium", "high", "very_low", "critical", " medium"])
    ]
    test_row = prepared.test.iloc[0]
    rows.append({"subject": test_row["subject"], "body": test_row["body"], "priority": "high"})  # a leak
    rows.append({"subject": "x", "body": "unbekannte Stufe", "priority": "urgent"})
    path = tmp_path / "extra.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_extra_rows_map_labels_and_drop_what_would_leak(
    tmp_path: Path, sample_prepared: PreparedData
) -> None:
    path = _extra_file(tmp_path, sample_prepared)
    scored = pd.concat([sample_prepared.val["text"], sample_prepared.test["text"]])
    extra = extra_rows([path], sample_prepared.text_recipe, list(sample_prepared.labels), scored, 0.6)
    assert extra["label"].tolist() == ["low", "medium", "high", "low", "high", "medium"]
    assert extra["label_id"].tolist() == [0, 1, 2, 0, 2, 1]
    assert not set(extra["text"]) & set(scored)
    assert extra["text"].iloc[0] == "Neues Thema 0\nEin ganz anderer Text über Rechnung 0 und Zahlung"


def test_screen_scores_both_training_sets_on_the_same_rows(
    tmp_path: Path, sample_prepared: PreparedData, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _extra_file(tmp_path, sample_prepared)
    assert main(["--prepared", str(sample_prepared.output_dir), "--extra", str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["extra_rows"] == 6 and result["extra_labels"] == {"low": 2, "medium": 2, "high": 2}
    assert (
        result["train+extra"]["n_train"] == result["train"]["n_train"] + 6 == len(sample_prepared.train) + 6
    )
    for name in ("train", "train+extra"):
        for split in ("val", "test"):
            assert 0.0 <= result[name][split]["macro_f1"] <= 1.0
            assert set(result[name][split]["per_language"]) == set(
                getattr(sample_prepared, split)["language"]
            )
