"""W&B never fails a run (offline without a key, a warning when it cannot start), and what the tracking
module logs really lands in the offline run file (read back record by record)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import tracking

from .helpers import wandb_history, wandb_records


def test_mode_is_offline_without_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert tracking.resolve_mode("auto") == "offline"
    assert tracking.resolve_mode("disabled") == "disabled"


def test_logger_none_and_disabled_track_nothing(tmp_path: Path) -> None:
    assert tracking.start_run({"name": "none"}, tmp_path, {}, None) is None
    assert tracking.start_run({"name": "wandb", "mode": "disabled"}, tmp_path, {}, None) is None


def test_wandb_that_cannot_start_does_not_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import wandb

    def _broken_init(**_: object) -> None:
        raise RuntimeError("wandb server unreachable")

    monkeypatch.setattr(wandb, "init", _broken_init)
    assert tracking.start_run({"name": "wandb", "mode": "online"}, tmp_path, {}, None) is None
    assert "training continues without tracking" in caplog.text


@pytest.mark.slow
def test_offline_run_records_the_confusion_matrix_summary_and_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = {"name": "wandb", "project": "ticket-triage-test", "mode": "auto", "log_model": True}
    run = tracking.start_run(cfg, tmp_path, {"trainer": {"lr": 1e-3}}, "fixedid42")
    assert run is not None and run.id == "fixedid42" and run.settings.mode == "offline"
    tracking.log_confusion(run, [0, 1, 2, 2], [0, 2, 2, 2], ["low", "medium", "high"])
    tracking.finish_run(run, cfg, tiny_checkpoint, "tiny-priority", {"best_val_macro_f1": 0.75})
    [run_dir] = (tmp_path / "wandb").glob("offline-run-*-fixedid42")
    records = wandb_records(next(run_dir.glob("run-fixedid42.wandb")))
    # the config arrives with the run record (and in later config records when it changes)
    config_items = [
        item
        for r in records
        if r.WhichOneof("record_type") in ("run", "config")
        for item in (r.run.config.update if r.WhichOneof("record_type") == "run" else r.config.update)
    ]
    assert any(json.loads(item.value_json) == {"lr": 0.001} for item in config_items if item.key == "trainer")
    [table] = [h for h in wandb_history(records) if "val/confusion_matrix_table/_type" in h]
    assert table["val/confusion_matrix_table/_type"] == "table-file"
    rows = json.loads((run_dir / "files" / table["val/confusion_matrix_table/path"]).read_text())
    counts = {(r[0], r[1]): r[2] for r in rows["data"]}  # (actual, predicted) -> count
    assert counts[("high", "high")] == 2 and counts[("medium", "high")] == 1 and counts[("low", "low")] == 1
    summary = {
        i.key: json.loads(i.value_json)
        for r in records
        if r.WhichOneof("record_type") == "summary"
        for i in r.summary.update
    }
    assert summary["best_val_macro_f1"] == 0.75
    [model] = [
        r.artifact
        for r in records
        if r.WhichOneof("record_type") == "artifact" and r.artifact.type == "model"
    ]
    assert model.name == "tiny-priority" and {"best", "latest"} <= set(model.aliases)
    assert {p.name for p in tiny_checkpoint.iterdir()} == {e.path for e in model.manifest.contents}
