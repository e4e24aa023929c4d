"""Helpers for the training tests: run ``python -m training.run`` (or torchrun) as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def training_env(**extra: str) -> dict[str, str]:
    """The test process's environment, one thread per process, no W&B credentials (so W&B runs offline)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "WANDB_MODE", "RANK", "WORLD_SIZE")
    }
    env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_cmd(args: Sequence[str], run_dir: Path) -> list[str]:
    """argv of ``python -m training.run`` writing into ``run_dir`` (data into ``run_dir/processed``)."""
    return [
        sys.executable,
        "-m",
        "training.run",
        *args,
        f"hydra.run.dir={run_dir.as_posix()}",
        f"data.output_dir={(run_dir / 'processed').as_posix()}",
    ]


def run_training(
    args: Sequence[str], run_dir: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        run_cmd(args, run_dir),
        cwd=REPO_ROOT,
        env=training_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
