"""Atomic ``best`` writes and crash recovery; which Trainer checkpoint ``trainer.resume`` picks, and the
refusal to resume a run whose config differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
        labels={"target": "priority", "labels": ["low", "medium", "high"]},
        metrics={"epoch": 1, "step": 2, "val": {"macro_f1": 0.5}},
        recipe={"max_length": 8},
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
        ckpt.save_best(tmp_path, _Broken("x"), _Saveable("t"), labels={})
    assert (tmp_path / "best" / "one.bin").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_recover_restores_best_moved_aside_by_a_crash(tmp_path: Path) -> None:
    best = _save(tmp_path, "one")
    best.rename(tmp_path / ".best.old-abc")  # the crash landed between the two renames
    (tmp_path / ".best.tmp-def").mkdir()
    ckpt.recover(tmp_path)
    assert (tmp_path / "best" / "one.bin").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def _trainer_checkpoint(run: Path, step: int, complete: bool = True, config: dict | None = None) -> Path:
    path = run / "checkpoints" / "last" / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        payload = {"config": config or {"trainer": {"lr": 1e-3}}, "wandb_run_id": "abc"}
        (path / ckpt.RUN_CONFIG).write_text(json.dumps(payload))
    return path


def test_resume_picks_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    assert ckpt.find_resume_checkpoint(tmp_path / "new", True) is None
    assert ckpt.find_resume_checkpoint(tmp_path / "new", False) is None
    older = _trainer_checkpoint(tmp_path / "2026-01-01_00-00-00", 100)
    _trainer_checkpoint(tmp_path / "2026-01-01_00-00-00", 20)
    newer = _trainer_checkpoint(tmp_path / "2026-01-02_00-00-00", 9)
    _trainer_checkpoint(tmp_path / "2026-01-02_00-00-00", 10, complete=False)  # killed while saving
    assert ckpt.find_resume_checkpoint(tmp_path / "2026-01-03_00-00-00", True) == newer
    assert ckpt.find_resume_checkpoint(tmp_path / "2026-01-02_00-00-00", "true") == newer
    assert ckpt.find_resume_checkpoint(tmp_path / "x", str(tmp_path / "2026-01-01_00-00-00")) == older
    assert ckpt.find_resume_checkpoint(tmp_path / "x", str(older)) == older
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        ckpt.find_resume_checkpoint(tmp_path / "x", str(tmp_path / "nowhere"))


def test_resume_refuses_another_config_and_names_the_keys(tmp_path: Path) -> None:
    config = {"trainer": {"lr": 1e-3, "batch_size": 8, "resume": False}, "seed": 1}
    path = _trainer_checkpoint(tmp_path, 5, config=config)
    same = {"trainer": {"lr": 1e-3, "batch_size": 8, "resume": True}, "seed": 1}  # resume itself may differ
    assert ckpt.check_resume_config(path, same)["wandb_run_id"] == "abc"
    other = {"trainer": {"lr": 5e-3, "batch_size": 8, "resume": True}, "seed": 2, "new": 0}
    with pytest.raises(CheckpointError) as info:
        ckpt.check_resume_config(path, other)
    message = str(info.value)
    assert "trainer.lr (0.001 -> 0.005)" in message and "seed (1 -> 2)" in message and "new" in message
    assert "batch_size" not in message
