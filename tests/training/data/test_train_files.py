"""``data.split.train_files``: more training rows that never move a val/test ticket (data/prepare.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.training.data.test_data_prepare import cfg, grid, ticket, write_csv
from training.data import DataValidationError, PreparedData, prepare

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "tickets"


def test_train_only_rows_join_train_and_val_test_stay_as_they_were(tmp_path: Path) -> None:
    core = write_csv(tmp_path / "a.csv", grid(0, 10))
    without = prepare(cfg(tmp_path / "without", [core]))
    val_row = without.val.iloc[0]
    test_row = without.test.iloc[0]
    train_row = without.train.iloc[0]
    fresh = [
        ticket(
            1000 + i,
            ("low", "medium", "high")[i % 3],
            "de",
            body=f"Zusatzanfrage zum Vertrag v{i}x (no digit token shared with another ticket)",
        )
        for i in range(20)
    ]
    copies = [
        ticket(
            2000, val_row["label"], body=val_row["body"], subject=val_row["subject"]
        ),  # a val ticket again
        ticket(2001, train_row["label"], body=train_row["body"], subject=train_row["subject"]),
        # a near-duplicate of a test ticket (its number token makes it unlike every other ticket)
        ticket(2002, test_row["label"], body=test_row["body"] + " again"),
    ]
    extra = write_csv(tmp_path / "extra_tickets.csv", fresh + copies)
    with_extra = prepare(cfg(tmp_path / "with", [core, extra], split={"train_files": ["extra_*"]}))

    for split in ("val", "test"):
        pd.testing.assert_frame_equal(getattr(with_extra, split), getattr(without, split))
    train = with_extra.train
    added = train[train["source"] == "extra_tickets.csv"]
    assert len(train) == len(without.train) + 20
    pd.testing.assert_frame_equal(train.iloc[: len(without.train)], without.train)
    assert sorted(added["body"]) == sorted(row["body"] for row in fresh)
    stats = with_extra.stats["split"]
    assert stats["train_files"] == ["extra_*"]
    assert stats["train_only"] == {
        "rows": 20,
        "dropped_near_val_test": 1,
        "duplicates": 2,
        "label_conflicts": 0,
    }
    assert with_extra.stats["sizes"]["train"] == len(train)
    # the option is part of the data hash: the same output dir is prepared again, not reused
    assert with_extra.stats["data_hash"] != without.stats["data_hash"]


def test_train_files_that_match_nothing_or_overlap_test_files_are_refused(tmp_path: Path) -> None:
    core = write_csv(tmp_path / "a.csv", grid(0, 4))
    extra = write_csv(tmp_path / "helpdesk_x.csv", grid(500, 2))
    with pytest.raises(DataValidationError, match="match no input file"):
        prepare(cfg(tmp_path, [core], split={"train_files": ["german*"]}))
    with pytest.raises(DataValidationError, match="share the patterns"):
        prepare(
            cfg(tmp_path, [core, extra], split={"train_files": ["helpdesk*"], "test_files": ["helpdesk*"]})
        )
    with pytest.raises(DataValidationError, match="a file matches both"):
        prepare(cfg(tmp_path, [core, extra], split={"train_files": ["help*"], "test_files": ["*_x.csv"]}))


@pytest.mark.real_data
@pytest.mark.parametrize(
    ("plain_config", "german_config"), [("tickets", "tickets_de"), ("crossfile", "crossfile_de")]
)
def test_the_german_files_train_only_beside_the_real_splits(
    plain_config: str, german_config: str, tmp_path: Path
) -> None:
    if not (SHARED / "dataset-tickets-german_normalized.csv").is_file():
        pytest.skip(f"the German-normalised ticket files not found in {SHARED}")
    from training.data.config import compose

    def prepared(name: str) -> PreparedData:
        return prepare(compose("prepare", [f"data={name}", f"data.output_dir={tmp_path / name}"]).data)

    plain, german = prepared(plain_config), prepared(german_config)  # data=tickets_de, data=crossfile_de
    for split in ("val", "test"):
        pd.testing.assert_frame_equal(getattr(german, split), getattr(plain, split))
    pd.testing.assert_frame_equal(german.train.iloc[: len(plain.train)], plain.train)
    added = german.train.iloc[len(plain.train) :]
    assert set(added["source"]) == {
        "dataset-tickets-german_normalized.csv",
        "dataset-tickets-german_normalized_50_5_2.csv",
    }
    assert len(added) == german.stats["split"]["train_only"]["rows"] > 5000
    assert set(added["language"]) == {"de"} and set(added["label"]) == {"low", "medium", "high"}
