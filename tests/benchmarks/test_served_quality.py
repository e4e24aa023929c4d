"""benchmarks/served_quality.py: a real bundle scored one ticket per POST /predict, and its figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmarks.served_quality import load_tickets, main, score


def test_score_on_a_hand_checked_frame() -> None:
    answers = pd.DataFrame(
        {
            "label": ["low", "low", "high", "high", "medium"],
            "pred": ["low", "high", "high", "high", "medium"],
            "confidence": [0.9, 0.4, 0.8, 0.7, 0.6],
            "needs_review": [False, True, False, False, True],
            "truncated": [False, False, True, False, False],
            "language": ["en"] * 5,
        }
    )
    figures = score(answers, ["low", "medium", "high"])
    assert figures["accuracy"] == 0.8
    # F1 low 2/3, medium 1, high 0.8 -> mean 0.8222
    assert figures["macro_f1"] == pytest.approx((2 / 3 + 1 + 0.8) / 3, abs=1e-4)
    assert figures["recall"] == {"low": 0.5, "medium": 1.0, "high": 1.0}
    assert figures["review_band"] == {"auto_triaged": 0.6, "accuracy_auto_triaged": 1.0}
    assert figures["coverage_at_70"] == 1.0  # 4/5 correct overall is >= 0.7
    assert figures["truncated"] == 0.2


def test_raw_dataset_files_are_read_with_the_data_stage_loader(tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text(
        "subject,body,priority,language\n"
        "Down,Line one\\nline two,critical,en\n,  ,low,de\nQ,Hallo,very_low,de\n",
        encoding="utf-8",
    )
    tickets = load_tickets([raw])
    assert tickets["label"].tolist() == ["high", "low"]  # the empty body is dropped, labels mapped
    assert tickets["body"][0] == "Line one\nline two"


@pytest.mark.slow
def test_the_tiny_bundle_is_scored_through_a_real_server(
    tiny_bundle: Path, sample_prepared: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test_split = Path(sample_prepared.output_dir) / "test.parquet"
    out = tmp_path / "quality.json"
    assert main(["--bundle", str(tiny_bundle), "--tickets", str(test_split), "--json", str(out)]) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["n"] == len(pd.read_parquet(test_split))
    assert 0.0 <= figures["macro_f1"] <= 1.0 and 0.0 <= figures["ece"] <= 1.0
    assert set(figures["recall"]) <= {"low", "medium", "high"}
    assert json.loads(capsys.readouterr().out)["model_version"] == figures["model_version"]


def test_a_folder_that_is_not_a_bundle_is_refused_at_once(tmp_path: Path) -> None:
    tickets = tmp_path / "t.csv"
    tickets.write_text("subject,body,priority,language\nS,B,low,en\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["--bundle", str(tmp_path / "missing"), "--tickets", str(tickets)])
    assert exc.value.code == 2  # argparse's usage error, before any server starts


def test_a_bundle_the_server_refuses_ends_the_wait_with_its_log(tmp_path: Path) -> None:
    bundle = tmp_path / "broken"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}", encoding="utf-8")  # the server refuses it at load and exits
    tickets = tmp_path / "t.csv"
    tickets.write_text("subject,body,priority,language\nS,B,low,en\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["--bundle", str(bundle), "--tickets", str(tickets)])
    message = str(exc.value.code)
    assert message.startswith("error: the server exited with") and "log" in message
