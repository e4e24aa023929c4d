"""kill -9 mid-epoch, rerun with trainer.resume=true: it continues from ``last`` and ends with the same step
count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from .helpers import REPO_ROOT, run_cmd, run_training, training_env

pytestmark = pytest.mark.slow


def _kill_after_first_save(run_dir: Path, timeout: float = 240) -> None:
    state = run_dir / "checkpoints" / "last" / "state.pt"
    proc = subprocess.Popen(
        run_cmd(["experiment=smoke", "evaluate=false"], run_dir),
        cwd=REPO_ROOT,
        env=training_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while not state.exists():
            assert proc.poll() is None, "training ended before its first mid-epoch save"
            assert time.monotonic() < deadline, "no checkpoints/last/state.pt within the timeout"
            time.sleep(0.02)
    finally:
        proc.kill()  # SIGKILL: no cleanup, no final save
        proc.wait(timeout=30)


def test_resume_after_kill_mid_epoch(tmp_path: Path, tiny_run_dir: Path) -> None:
    run_dir = tmp_path / "run"
    _kill_after_first_save(run_dir)
    saved = torch.load(run_dir / "checkpoints" / "last" / "state.pt", map_location="cpu", weights_only=False)
    trainer_state = saved["trainer"]
    assert trainer_state["epoch"] == 0, "the kill must land in the first epoch"
    assert 0 < trainer_state["batch_in_epoch"] < saved["steps_per_epoch"], "killed mid-epoch"
    killed_at = trainer_state["global_step"]

    result = run_training(["experiment=smoke", "evaluate=false", "trainer.resume=true"], run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    log_text = (run_dir / "run.log").read_text()
    assert (
        f"resumed at epoch 0, batch {trainer_state['batch_in_epoch']}, optimizer step {killed_at}/"
        in log_text
    )

    resumed = json.loads((run_dir / "metrics" / "train_summary.json").read_text())
    uninterrupted = json.loads(
        (tiny_run_dir / "metrics" / "train_summary.json").read_text()
    )  # same smoke config
    assert resumed["global_step"] == uninterrupted["global_step"] == resumed["total_steps_planned"]
    assert resumed["samples_seen"] == uninterrupted["samples_seen"], "no batch skipped or repeated"
    assert resumed["epochs_completed"] == 4
    assert (run_dir / "checkpoints" / "best" / "labels.json").is_file()


def test_resume_true_without_state_starts_fresh(tmp_path: Path) -> None:
    from training.checkpoint import find_resume_state

    assert find_resume_state(tmp_path / "outputs" / "train" / "new", True) is None
    assert find_resume_state(tmp_path, False) is None


def test_resume_finds_newest_sibling_run(tmp_path: Path) -> None:
    from training.checkpoint import find_resume_state

    for name in ("2026-01-01_00-00-00", "2026-01-02_00-00-00"):
        state = tmp_path / name / "checkpoints" / "last" / "state.pt"
        state.parent.mkdir(parents=True)
        state.write_bytes(b"x")
    found = find_resume_state(tmp_path / "2026-01-03_00-00-00", True)
    assert found == tmp_path / "2026-01-02_00-00-00" / "checkpoints" / "last" / "state.pt"
    explicit = find_resume_state(tmp_path / "x", str(tmp_path / "2026-01-01_00-00-00"))
    assert explicit == tmp_path / "2026-01-01_00-00-00" / "checkpoints" / "last" / "state.pt"


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun's gloo rendezvous is not supported on Windows")
def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    """torchrun --nproc_per_node 2 with gloo: completes; one checkpoint, one run dir, one log."""
    run_dir = tmp_path / "run"
    cwd_before = set(REPO_ROOT.iterdir())
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "training.run",
        *run_cmd(["experiment=smoke", "evaluate=false", "trainer.max_epochs=2"], run_dir)[3:],
    ]
    result = subprocess.run(
        cmd, cwd=REPO_ROOT, env=training_env(), capture_output=True, text=True, timeout=420, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best", "last"}  # no temp dirs left
    assert (run_dir / "checkpoints" / "best" / "labels.json").is_file()
    summary = json.loads((run_dir / "metrics" / "train_summary.json").read_text())
    assert summary["world_size"] == 2
    # 240 training rows: 120 per rank, batch 8 -> 15 optimizer steps per epoch on each rank
    assert summary["steps_per_epoch"] == 15 and summary["global_step"] == 30
    assert summary["samples_seen"] == 2 * 240
    log_text = (run_dir / "run.log").read_text()
    assert "DDP: rank 0/2" in log_text and "backend gloo" in log_text
    assert set(REPO_ROOT.iterdir()) == cwd_before, "rank 1 wrote into the working directory"
