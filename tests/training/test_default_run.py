"""The default command (no overrides: MiniLM offline on the embedded sample, W&B in offline mode) really runs.

Shortened with trainer.max_steps so it stays a test; the full default run is the README quickstart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .helpers import REPO_ROOT, run_training, training_env

pytestmark = pytest.mark.slow


def test_default_config_trains_minilm_offline_with_wandb_offline(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_training(["trainer.max_steps=2", "evaluate=false", "trainer.progress_bar=false"], run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    recipe = json.loads((run_dir / "checkpoints" / "best" / "recipe.json").read_text())
    assert recipe["model_name"] == "minilm" and recipe["max_length"] == 128
    assert recipe["pretrained"] == "sentence-transformers/all-MiniLM-L6-v2"
    summary = json.loads((run_dir / "metrics" / "train_summary.json").read_text())
    assert summary["global_step"] == 2
    assert list((run_dir / "wandb").glob("offline-run-*/*.wandb")), "W&B did not run in offline mode"
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "run.log").is_file()
    assert "offline mode" in (run_dir / "run.log").read_text()


def test_hydra_multirun_writes_one_run_per_combination(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "multirun"
    cmd = [
        sys.executable,
        "-m",
        "training.run",
        "-m",
        "experiment=smoke",
        "trainer.max_epochs=1",
        "evaluate=false",
        "trainer.lr=1e-3,5e-3",
        f"hydra.sweep.dir={sweep_dir.as_posix()}",
        f"data.output_dir={(tmp_path / 'processed').as_posix()}",
    ]
    result = subprocess.run(
        cmd, cwd=REPO_ROOT, env=training_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        assert (sweep_dir / job / "checkpoints" / "best" / "labels.json").is_file()
    peak_lr = {}
    for job in ("0", "1"):
        config = yaml.safe_load((sweep_dir / job / ".hydra" / "config.yaml").read_text())
        steps = json.loads((sweep_dir / job / "metrics" / "history.json").read_text())["steps"]
        peak_lr[float(config["trainer"]["lr"])] = max(s["lr"] for s in steps)
    # same schedule, learning rates 5x apart: each job really ran with its own override
    assert sorted(peak_lr) == [1e-3, 5e-3]
    assert peak_lr[5e-3] / peak_lr[1e-3] == pytest.approx(5.0)
