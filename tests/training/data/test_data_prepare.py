"""prepare() / load_prepared() on small files written by the tests: validation, labels, dedupe, split."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from training.data import DataValidationError, PreparedData, load_prepared, prepare
from training.data.config import compose
from training.data.prepare import SPLIT_COLUMNS
from training.data.split import stratified_split

COLUMNS = ["subject", "body", "answer", "type", "queue", "priority", "language"]
LANGUAGES = ("en", "de", "es", "fr", "pt")
PRIORITIES = ("low", "medium", "high")


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] = COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: row.get(key, "") for key in columns} for row in rows)
    return path


def ticket(i: int, priority: str = "low", language: str = "en", **extra: str) -> dict[str, str]:
    row = {
        "subject": f"Subject {i}",
        "body": f"Body number {i} about something",
        "answer": "ok",
        "type": ("Incident", "Request")[i % 2],
        "queue": ("IT Support", "Billing and Payments", "Product Support")[i % 3],
        "priority": priority,
        "language": language,
    }
    row.update(extra)
    return row


def grid(start: int, per_stratum: int) -> list[dict[str, str]]:
    rows, i = [], start
    for language in LANGUAGES:
        for priority in PRIORITIES:
            for _ in range(per_stratum):
                rows.append(ticket(i, priority, language))
                i += 1
    return rows


def cfg(tmp_path: Path, paths: list[Path], **overrides: Any) -> dict[str, Any]:
    base = compose("prepare").data
    data: dict[str, Any] = {
        **dict(base),
        "paths": [str(p) for p in paths],
        "output_dir": str(tmp_path / "out"),
    }
    data.update(overrides)
    return data


def all_splits(prepared: PreparedData) -> pd.DataFrame:
    return pd.concat(
        [
            prepared.train.assign(split="train"),
            prepared.val.assign(split="val"),
            prepared.test.assign(split="test"),
        ],
        ignore_index=True,
    )


def test_prepare_writes_the_contract_files(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "t.csv", grid(0, 20))
    prepared = prepare(cfg(tmp_path, [src]))
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "stats.json",
        "test.parquet",
        "train.parquet",
        "val.parquet",
    ]
    train = pd.read_parquet(out / "train.parquet")
    assert list(train.columns) == SPLIT_COLUMNS
    assert str(train["label_id"].dtype) == "int64"
    assert (train["label_id"] == train["label"].map({"low": 0, "medium": 1, "high": 2})).all()
    assert (train["text"] == train["subject"] + "\n" + train["body"]).all()
    assert set(train["source"]) == {"t.csv"}
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["labels"] == ["low", "medium", "high"] == prepared.labels
    assert stats["target"] == "priority"
    assert stats["text_recipe"] == {"fields": ["subject", "body"], "separator": "\n"}
    assert stats["rows_in"] == 300
    assert stats["files"][0]["rows"] == 300 and len(stats["files"][0]["sha256"]) == 64
    sizes = stats["sizes"]  # near-duplicate groups move val/test off exact 10% by under a group per stratum
    assert sum(sizes.values()) == 300 and 24 <= sizes["val"] <= 36 and 24 <= sizes["test"] <= 36
    # 20 rows per label x language: 2 to val, 2 to test, in every stratum.
    for split, expected in (("train", 16), ("val", 2), ("test", 2)):
        assert all(stats["counts"][split][p][lang] == expected for p in PRIORITIES for lang in LANGUAGES)


def test_load_prepared_round_trips(tmp_path: Path) -> None:
    prepared = prepare(cfg(tmp_path, [write_csv(tmp_path / "t.csv", grid(0, 10))]))
    loaded = load_prepared(tmp_path / "out")
    for name in ("train", "val", "test"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(prepared, name), check_dtype=False)
    assert loaded.labels == prepared.labels and loaded.stats == prepared.stats
    assert loaded.text_recipe == prepared.text_recipe and loaded.target == "priority"


def test_load_prepared_without_stats_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"run `python -m training\.data prepare"):
        load_prepared(tmp_path)


def test_split_is_deterministic_and_seeded(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "t.csv", grid(0, 20))
    first = prepare(cfg(tmp_path, [src], output_dir=str(tmp_path / "a")))
    again = prepare(cfg(tmp_path, [src], output_dir=str(tmp_path / "b")))
    other = prepare(cfg(tmp_path, [src], output_dir=str(tmp_path / "c"), seed=7))
    assert first.test["body"].tolist() == again.test["body"].tolist()
    assert set(first.test["body"]) != set(other.test["body"])
    assert (tmp_path / "a" / "test.parquet").read_bytes() == (tmp_path / "b" / "test.parquet").read_bytes()


def test_missing_body_column_names_file_and_column(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "nobody.csv", [{"subject": "s", "priority": "low"}], ["subject", "priority"])
    with pytest.raises(DataValidationError, match=r"nobody\.csv: missing required column 'body'"):
        prepare(cfg(tmp_path, [src]))


def test_missing_target_column(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "t.csv", grid(0, 2))
    with pytest.raises(DataValidationError, match=r"t\.csv: missing required column 'urgency'"):
        prepare(cfg(tmp_path, [src], target="urgency"))


def test_unknown_label_reports_value_and_row_count(tmp_path: Path) -> None:
    rows = [*grid(0, 2), ticket(100, "urgent"), ticket(101, "urgent"), ticket(102, "asap")]
    src = write_csv(tmp_path / "t.csv", rows)
    with pytest.raises(DataValidationError) as info:
        prepare(cfg(tmp_path, [src]))
    message = str(info.value)
    assert "t.csv: unknown priority value 'urgent' (2 rows), 'asap' (1 rows)" in message
    assert "data.label_map.priority" in message


def test_label_map_folds_five_levels_into_three(tmp_path: Path) -> None:
    rows = [*grid(0, 4), ticket(100, "very_low"), ticket(101, "critical"), ticket(102, "critical")]
    prepared = prepare(cfg(tmp_path, [write_csv(tmp_path / "t.csv", rows)]))
    assert prepared.stats["mapped"] == {"critical->high": 2, "very_low->low": 1}
    everything = all_splits(prepared)
    assert everything.set_index("body").loc["Body number 101 about something", "label"] == "high"
    assert set(everything["label"]) == set(PRIORITIES)


def test_empty_bodies_and_labels_are_dropped_and_counted(tmp_path: Path) -> None:
    rows = [*grid(0, 4), ticket(100, body="   "), ticket(101, body="\\n"), ticket(102, priority="")]
    prepared = prepare(cfg(tmp_path, [write_csv(tmp_path / "t.csv", rows)]))
    assert prepared.stats["dropped"]["empty_body"] == 2  # a literal "\n" is empty once unescaped
    assert prepared.stats["dropped"]["empty_priority"] == 1
    assert prepared.stats["rows_in"] == 63 and prepared.stats["rows_out"] == 60


def test_duplicates_across_files_are_counted_and_never_cross_splits(tmp_path: Path) -> None:
    first = grid(0, 10)
    # The second file repeats 30 rows (re-cased, re-spaced) and reuses 5 bodies under new subjects.
    repeats = [dict(row, body="  " + row["body"].upper().replace(" ", "   ")) for row in first[:30]]
    same_body = [dict(row, subject="Another subject") for row in first[30:35]]
    files = [
        write_csv(tmp_path / "a.csv", first),
        write_csv(tmp_path / "b.csv", repeats + same_body + grid(500, 2)),
    ]
    prepared = prepare(cfg(tmp_path, files))
    assert prepared.stats["duplicates"] == 30
    assert prepared.stats["dropped"]["duplicate_body"] == 5
    assert prepared.stats["rows_out"] == 150 + 30
    everything = all_splits(prepared)
    normalised = everything["body"].str.lower().str.split().str.join(" ")
    assert normalised.duplicated().sum() == 0  # so no body can appear in two splits
    assert (everything["source"] == "b.csv").sum() == 30  # the first occurrence (a.csv) is the one kept


def test_language_defaults_to_unknown_and_subject_is_optional(tmp_path: Path) -> None:
    rows = [{"body": f"body {i}", "priority": PRIORITIES[i % 3]} for i in range(30)]
    prepared = prepare(cfg(tmp_path, [write_csv(tmp_path / "t.csv", rows, ["body", "priority"])]))
    everything = all_splits(prepared)
    assert set(everything["language"]) == {"unknown"}
    assert (everything["subject"] == "").all() and (everything["text"] == everything["body"]).all()


@pytest.mark.parametrize("target", ["queue", "type"])
def test_other_targets_use_sorted_values_when_labels_is_null(tmp_path: Path, target: str) -> None:
    prepared = prepare(
        cfg(tmp_path, [write_csv(tmp_path / "t.csv", grid(0, 10))], target=target, labels=None)
    )
    expected = {
        "queue": ["Billing and Payments", "IT Support", "Product Support"],
        "type": ["Incident", "Request"],
    }
    assert prepared.labels == expected[target] and prepared.target == target
    assert (prepared.train["label_id"] == prepared.train["label"].map(expected[target].index)).all()


def test_body_only_recipe(tmp_path: Path) -> None:
    recipe = {"fields": ["body"], "separator": "\n"}
    prepared = prepare(cfg(tmp_path, [write_csv(tmp_path / "t.csv", grid(0, 4))], text_recipe=recipe))
    assert (prepared.train["text"] == prepared.train["body"]).all()
    assert prepared.stats["text_recipe"] == recipe


def test_empty_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"data\.paths is empty"):
        prepare(cfg(tmp_path, []))


def test_bad_split_fractions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"data\.split fractions"):
        prepare(cfg(tmp_path, [write_csv(tmp_path / "t.csv", grid(0, 2))], split={"val": 0.6, "test": 0.5}))


def test_rare_strata_stay_in_train() -> None:
    frame = pd.DataFrame(
        {"label": ["a"] * 1 + ["b"] * 2 + ["c"] * 3 + ["d"] * 30, "language": ["en"] * 36},
        index=range(100, 136),
    )
    split = stratified_split(frame, 0.1, 0.1, seed=1, strata=("label", "language"))
    assert split.index.equals(frame.index)
    per_label = split.groupby(frame["label"]).value_counts().unstack(fill_value=0)
    assert per_label.loc[["a", "b", "c"], "train"].tolist() == [1, 2, 3]
    assert per_label.loc["d"].to_dict() == {"test": 3, "train": 24, "val": 3}
    tiny = stratified_split(frame.iloc[:2], 0.4, 0.4, seed=1, strata=("label", "language"))
    assert (tiny == "train").sum() >= 1  # every stratum keeps a training row


def test_sample_prepared_fixture(sample_prepared: PreparedData) -> None:
    assert sample_prepared.labels == ["low", "medium", "high"]
    sizes = sample_prepared.stats[
        "sizes"
    ]  # near-duplicate groups move val/test off exact 10% by under a group per stratum
    assert sum(sizes.values()) == 300 and 24 <= sizes["val"] <= 36 and 24 <= sizes["test"] <= 36
    for split in (sample_prepared.train, sample_prepared.val, sample_prepared.test):
        assert set(split["language"]) == set(LANGUAGES)
        assert set(split["label"]) == set(PRIORITIES)
    assert (sample_prepared.output_dir / "stats.json").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"label_map": {"very_low": "low"}}, r"data\.label_map must map a target"),
        ({"labels": "low"}, r"data\.labels must be a list or null"),
        ({"labels": ["low", "low"]}, r"data\.labels must be distinct"),
        ({"output_dir": ""}, r"data\.output_dir must be set"),
    ],
)
def test_malformed_config_values_are_refused(tmp_path: Path, override: dict[str, Any], message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        prepare(cfg(tmp_path, [write_csv(tmp_path / "t.csv", grid(0, 2))], **override))


def test_prepared_splits_are_reused_while_the_data_hash_matches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = write_csv(tmp_path / "t.csv", grid(0, 20))
    first = prepare(cfg(tmp_path, [src]))
    stamp = (tmp_path / "out" / "train.parquet").stat().st_mtime_ns
    caplog.set_level("INFO", logger="training.data.prepare")
    again = prepare(cfg(tmp_path, [src]))
    assert "reusing the prepared splits" in caplog.text
    assert (tmp_path / "out" / "train.parquet").stat().st_mtime_ns == stamp, "reused, not rewritten"
    assert again.stats["data_hash"] == first.stats["data_hash"] and len(first.stats["data_hash"]) == 64
    pd.testing.assert_frame_equal(again.train, first.train, check_dtype=False)
    caplog.clear()
    reseeded = prepare(cfg(tmp_path, [src], seed=7))  # another config: another hash, prepared again
    assert "reusing" not in caplog.text and reseeded.stats["data_hash"] != first.stats["data_hash"]
    write_csv(src, grid(0, 21))  # other input data: prepared again
    assert prepare(cfg(tmp_path, [src], seed=7)).stats["rows_in"] > reseeded.stats["rows_in"]
