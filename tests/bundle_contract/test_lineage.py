"""recipe.json's data record: the prepared splits a checkpoint was trained on (contracts, section 3)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bundle_contract.lineage import changed_data, split_hashes


def _prepared(directory: Path, val_label: str = "low") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, label in (("train", "high"), ("val", val_label), ("test", "medium")):
        pd.DataFrame({"text": [f"{name} ticket"], "label": [label]}).to_parquet(directory / f"{name}.parquet")
    (directory / "stats.json").write_text('{"data_hash": "a"}')
    return directory


def test_same_splits_pass_though_stats_json_changed(tmp_path: Path) -> None:
    """A new config key moves stats.json (and the data hash), not the split files: still the same data."""
    data = _prepared(tmp_path / "data")
    record = {"split_sha256": split_hashes(data), "stats_sha256": "0" * 64}
    (data / "stats.json").write_text('{"data_hash": "b", "new_key": []}')
    assert changed_data(record, data) is None


def test_a_changed_split_is_named(tmp_path: Path) -> None:
    data = _prepared(tmp_path / "data")
    record = {"split_sha256": split_hashes(data)}
    _prepared(data, val_label="high")
    assert changed_data(record, data) == "val.parquet sha256 differs"
    (data / "test.parquet").unlink()
    assert changed_data(record, data) == "val.parquet, test.parquet sha256 differs"
    assert split_hashes(data) is None


def test_older_checkpoints_fall_back_to_the_stats_json_hash(tmp_path: Path) -> None:
    data = _prepared(tmp_path / "data")
    assert changed_data({"stats_sha256": "0" * 64}, data) == "stats.json sha256 differs"
    assert changed_data({}, data) is None  # a hand-made checkpoint records nothing
    assert changed_data({"stats_sha256": "0" * 64}, tmp_path / "gone") is None  # nothing to compare
