"""W&B never fails a run: offline without a key, a warning (not a crash) when it cannot start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import tracking


def test_mode_is_offline_without_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert tracking.resolve_mode("auto") == "offline"
    assert tracking.resolve_mode("disabled") == "disabled"


def test_logger_none_and_other_ranks_track_nothing(tmp_path: Path) -> None:
    assert type(tracking.create_tracker({"name": "none"}, tmp_path, {}, True)) is tracking.Tracker
    assert type(tracking.create_tracker({"name": "wandb"}, tmp_path, {}, False)) is tracking.Tracker


def test_wandb_that_cannot_start_does_not_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import wandb

    def _broken_init(**_: object) -> None:
        raise RuntimeError("wandb server unreachable")

    monkeypatch.setattr(wandb, "init", _broken_init)
    tracker = tracking.create_tracker({"name": "wandb", "mode": "online"}, tmp_path, {}, True)
    assert type(tracker) is tracking.Tracker
    assert "training continues without tracking" in caplog.text


@pytest.mark.slow
def test_offline_run_logs_metrics_and_the_best_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = {
        "name": "wandb",
        "project": "ticket-triage-test",
        "mode": "auto",
        "log_model": True,
        "registry": "wandb-registry-model/ticket-triage",
    }
    tracker = tracking.create_tracker(cfg, tmp_path, {"trainer": {"lr": 1e-3}}, True)
    assert isinstance(tracker, tracking.WandbTracker) and tracker.mode == "offline"
    tracker.log_step(1, {"loss": 1.1, "lr": 1e-3})
    metrics = json.loads((tiny_checkpoint / "metrics.json").read_text())["val"]
    tracker.log_epoch(1, 1, metrics, ["low", "medium", "high"])
    tracker.log_confusion("val/confusion_matrix", [0, 1, 2], [0, 2, 2], ["low", "medium", "high"])
    tracker.log_best_checkpoint(tiny_checkpoint, "tiny-priority", {"val_macro_f1": metrics["macro_f1"]})
    tracker.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), "no offline run file to `wandb sync` later"
