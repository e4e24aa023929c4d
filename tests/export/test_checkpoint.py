"""Checkpoint discovery and validation (docs/contracts.md section 3); no model is loaded here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export.checkpoint import find_latest_checkpoint, load_checkpoint
from export.errors import CheckpointError

LABELS = ["low", "medium", "high"]


def make_fake_checkpoint(path: Path, *, labels: list[str] = LABELS, with_labels: bool = True) -> Path:
    """The contract's files with placeholder weights: enough for validation, not for loading a model."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"id2label": {str(i): x for i, x in enumerate(LABELS)}}))
    (path / "tokenizer.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"")
    if with_labels:
        (path / "labels.json").write_text(json.dumps({"target": "priority", "labels": labels}))
    recipe = {
        "text_recipe": {"fields": ["body"], "separator": "\n"},
        "max_length": 128,
        "model_name": "minilm",
        "pretrained": "x",
        "data": {"output_dir": "data/processed", "stats_sha256": "abc"},
    }
    (path / "recipe.json").write_text(json.dumps(recipe))
    return path


def test_load_checkpoint_reads_the_contract_files(tmp_path: Path) -> None:
    ckpt = load_checkpoint(make_fake_checkpoint(tmp_path / "best"))
    assert ckpt.labels == LABELS
    assert ckpt.target == "priority"
    assert ckpt.max_length == 128
    assert ckpt.text_recipe == {"fields": ["body"], "separator": "\n"}
    assert ckpt.data_dir == Path("data/processed")
    assert ckpt.stats_sha256 == "abc"


def test_missing_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*does not exist"):
        load_checkpoint(tmp_path / "nope")


def test_file_instead_of_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_text("x")
    with pytest.raises(CheckpointError, match="must be a directory"):
        load_checkpoint(tmp_path / "model.bin")


def test_incomplete_checkpoint_names_what_is_missing(tmp_path: Path) -> None:
    path = make_fake_checkpoint(tmp_path / "best", with_labels=False)
    (path / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match=r"lacks tokenizer\.json, labels\.json"):
        load_checkpoint(path)


def test_label_order_disagreement_is_refused(tmp_path: Path) -> None:
    path = make_fake_checkpoint(tmp_path / "best", labels=["high", "medium", "low"])
    with pytest.raises(CheckpointError, match="label order disagrees"):
        load_checkpoint(path)


def test_corrupt_json_is_reported_with_its_path(tmp_path: Path) -> None:
    path = make_fake_checkpoint(tmp_path / "best")
    (path / "recipe.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"recipe\.json"):
        load_checkpoint(path)


def test_find_latest_takes_the_newest_run_with_labels(tmp_path: Path) -> None:
    make_fake_checkpoint(tmp_path / "2026-11-28_10-00-00" / "checkpoints" / "best")
    newest_complete = make_fake_checkpoint(tmp_path / "2026-11-29_09-00-00" / "checkpoints" / "best")
    # newer, but still being written (no labels.json yet): skipped
    make_fake_checkpoint(tmp_path / "2026-11-29_10-00-00" / "checkpoints" / "best", with_labels=False)
    assert find_latest_checkpoint(tmp_path) == newest_complete


def test_find_latest_without_runs_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no checkpoint found.*--checkpoint DIR"):
        find_latest_checkpoint(tmp_path)
