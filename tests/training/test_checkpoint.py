"""Atomic checkpoint writes and recovery from a crash between the two renames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training import checkpoint as ckpt
from training.errors import CheckpointError


class _Saveable:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def save_pretrained(self, path: Path, **_: object) -> None:
        (Path(path) / f"{self.tag}.bin").write_text(self.tag)


def _save(checkpoints: Path, tag: str) -> Path:
    return ckpt.save_best(
        checkpoints,
        _Saveable(tag),
        _Saveable(f"tok-{tag}"),
        labels_json={"target": "priority", "labels": ["low", "medium", "high"]},
        metrics_json={"epoch": 1, "step": 2, "val": {"macro_f1": 0.5}},
        recipe_json={"max_length": 8},
    )


def test_save_best_replaces_the_previous_best_and_leaves_no_temp(tmp_path: Path) -> None:
    _save(tmp_path, "one")
    best = _save(tmp_path, "two")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
    assert sorted(p.name for p in best.iterdir()) == [
        "labels.json",
        "metrics.json",
        "recipe.json",
        "tok-two.bin",
        "two.bin",
    ]
    assert json.loads((best / "labels.json").read_text())["labels"] == ["low", "medium", "high"]
    assert (best.stat().st_mode & 0o777) == 0o755 and ((best / "labels.json").stat().st_mode & 0o777) == 0o644


def test_failed_save_keeps_the_old_best(tmp_path: Path) -> None:
    _save(tmp_path, "one")

    class _Broken(_Saveable):
        def save_pretrained(self, path: Path, **_: object) -> None:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        ckpt.save_best(
            tmp_path, _Broken("x"), _Saveable("t"), labels_json={}, metrics_json={}, recipe_json={}
        )
    assert (tmp_path / "best" / "one.bin").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_recover_restores_best_moved_aside_by_a_crash(tmp_path: Path) -> None:
    best = _save(tmp_path, "one")
    best.rename(tmp_path / ".best.old-abc")  # the crash landed between the two renames
    (tmp_path / ".best.tmp-def").mkdir()
    ckpt.recover(tmp_path)
    assert (tmp_path / "best" / "one.bin").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_last_state_roundtrip_and_torn_file(tmp_path: Path) -> None:
    path = ckpt.save_last(tmp_path, {"trainer": {"global_step": 7}, "t": torch.ones(2)})
    assert ckpt.load_last(path)["trainer"]["global_step"] == 7
    assert [p.name for p in path.parent.iterdir()] == ["state.pt"]
    path.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="delete it to start from scratch"):
        ckpt.load_last(path)
