"""The data stage on the real ticket samples in ../shared/data/tickets (skipped, with a reason, if absent)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from training.data import PreparedData, prepare
from training.data.config import compose
from training.data.dedupe import normalize_key
from training.data.io import read_table

pytestmark = pytest.mark.real_data

# Row counts and priority levels from ../shared/data/tickets/README.md.
FILES = {
    "aa_dataset-tickets-multi-lang-5-2-50-version.csv": 1872,
    "dataset-tickets-multi-lang-4-20k.csv": 2181,
    "helpdesk_customer_tickets.csv": 561,
    "dataset-tickets-german_normalized.csv": 2125,
    "dataset-tickets-german_normalized_50_5_2.csv": 3182,
}


def data_cfg(output_dir: Path, **overrides: Any) -> Any:
    cfg = compose("prepare", ["data=tickets"]).data
    cfg.output_dir = str(output_dir)
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


@pytest.fixture(scope="module")
def tickets_prepared(shared_tickets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    cfg = data_cfg(tmp_path_factory.mktemp("tickets"))
    cfg.paths = [str(shared_tickets_dir)]
    return prepare(cfg)


@pytest.mark.parametrize(("name", "rows"), FILES.items())
def test_every_schema_loads(shared_tickets_dir: Path, name: str, rows: int) -> None:
    frame = read_table(shared_tickets_dir / name)
    assert len(frame) == rows
    assert {"subject", "body", "queue", "priority", "language"} <= set(frame.columns)
    assert not frame["body"].str.contains("\\n", regex=False).any()  # literal escapes undone
    assert not frame["body"].str.contains("\r", regex=False).any()


def test_multiline_bodies_survive(shared_tickets_dir: Path) -> None:
    quoted = read_table(shared_tickets_dir / "helpdesk_customer_tickets.csv")  # real newlines in quotes
    escaped = read_table(
        shared_tickets_dir / "aa_dataset-tickets-multi-lang-5-2-50-version.csv"
    )  # literal \n
    assert quoted["body"].str.contains("\n\n").sum() > 200
    assert escaped["body"].str.contains("\n\n").sum() > 500


def test_default_tickets_config(tickets_prepared: PreparedData, shared_tickets_dir: Path) -> None:
    stats = tickets_prepared.stats
    assert {Path(f["path"]).name for f in stats["files"]} == set(list(FILES)[:3])
    for entry in stats["files"]:
        assert entry["sha256"] == hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest()
    assert stats["rows_in"] == 1872 + 2181 + 561
    assert stats["duplicates"] == 0  # the README: no body appears in two of these files
    assert sum(stats["sizes"].values()) == stats["rows_out"] == 4614
    assert tickets_prepared.labels == ["low", "medium", "high"]
    languages = {lang for split in stats["counts"].values() for per in split.values() for lang in per}
    assert languages == {"en", "de", "es", "fr", "pt"}
    assert 0.09 < stats["sizes"]["test"] / 4614 < 0.11


def test_no_body_in_two_splits(tickets_prepared: PreparedData) -> None:
    keys = {
        name: set(frame["body"].map(normalize_key))
        for name, frame in (
            ("train", tickets_prepared.train),
            ("val", tickets_prepared.val),
            ("test", tickets_prepared.test),
        )
    }
    assert not keys["train"] & keys["val"]
    assert not keys["train"] & keys["test"]
    assert not keys["val"] & keys["test"]


def test_split_is_stratified(tickets_prepared: PreparedData) -> None:
    train = tickets_prepared.train.groupby(["label", "language"]).size() / len(tickets_prepared.train)
    test = tickets_prepared.test.groupby(["label", "language"]).size() / len(tickets_prepared.test)
    assert (train - test).abs().max() < 0.01


def test_all_files_with_the_five_level_file_mapped(shared_tickets_dir: Path, tmp_path: Path) -> None:
    cfg = data_cfg(tmp_path, exclude=[])
    cfg.paths = [str(shared_tickets_dir)]
    prepared = prepare(cfg)
    assert prepared.stats["rows_in"] == sum(FILES.values())
    assert prepared.stats["mapped"] == {"critical->high": 450, "very_low->low": 431}
    assert prepared.labels == ["low", "medium", "high"]


def test_five_levels_without_mapping_fail_clearly(shared_tickets_dir: Path, tmp_path: Path) -> None:
    from training.data import DataValidationError

    cfg = data_cfg(tmp_path, label_map={})
    cfg.paths = [str(shared_tickets_dir / "dataset-tickets-german_normalized_50_5_2.csv")]
    with pytest.raises(
        DataValidationError, match=r"unknown priority value 'critical' \(450 rows\), 'very_low' "
    ):
        prepare(cfg)


@pytest.mark.parametrize(("target", "n_labels"), [("queue", 10), ("type", 4)])
def test_other_targets(shared_tickets_dir: Path, tmp_path: Path, target: str, n_labels: int) -> None:
    cfg = data_cfg(tmp_path, target=target, labels=None)
    cfg.paths = [str(shared_tickets_dir)]
    prepared = prepare(cfg)
    assert len(prepared.labels) == n_labels and prepared.labels == sorted(prepared.labels)
    assert "Technical Support" in prepared.labels or "Incident" in prepared.labels
    assert set(pd.concat([prepared.val, prepared.test])["label"]) <= set(prepared.labels)
