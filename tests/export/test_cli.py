"""``python -m export.onnx`` as a user runs it: exit codes and one clear message on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from export.bundle import verify_bundle
from tests.fixtures.bundle import TINY_MODEL_THRESHOLDS


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    repo = Path(__file__).resolve().parents[2]
    full_env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "export.onnx", *args],
        cwd=cwd or repo,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def assert_one_clear_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "ERROR" in line] == [
        next(line for line in result.stderr.splitlines() if message in line)
    ]


def test_missing_checkpoint_path(tmp_path: Path) -> None:
    result = run_cli("--checkpoint", str(tmp_path / "nope"))
    assert_one_clear_error(result, f"checkpoint not found: {tmp_path / 'nope'} does not exist")


def test_invalid_checkpoint_dir(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    result = run_cli("--checkpoint", str(tmp_path))
    assert_one_clear_error(result, "not a valid checkpoint")


def test_no_training_run_to_default_to(tmp_path: Path) -> None:
    result = run_cli("--runs-root", str(tmp_path / "outputs" / "train"))
    assert_one_clear_error(result, "no checkpoint found")


def test_missing_validation_data(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = run_cli(
        "--checkpoint",
        str(tiny_checkpoint),
        "--data",
        str(tmp_path / "nope"),
        "--output",
        str(tmp_path / "b"),
    )
    assert_one_clear_error(result, "validation data not found")
    assert list(tmp_path.iterdir()) == []  # not even a staging dir is left behind


def test_wandb_artifact_offline_is_a_clear_error() -> None:
    result = run_cli("--wandb-artifact", "model:best", env={"WANDB_MODE": "offline"})
    assert_one_clear_error(result, "W&B is offline")


def test_malformed_wandb_artifact_spec() -> None:
    result = run_cli("--wandb-artifact", "model")
    assert_one_clear_error(result, "must look like NAME:ALIAS")


@pytest.mark.slow
def test_documented_command_writes_a_verified_bundle(
    tiny_checkpoint: Path, sample_prepared: Any, tmp_path: Path
) -> None:
    """docs/export.md's example, with the tiny model's int8 thresholds (see tests/fixtures/bundle.py)."""
    output = tmp_path / "bundle"
    result = run_cli(
        "--checkpoint",
        str(tiny_checkpoint),
        "--data",
        str(sample_prepared.output_dir),
        "--quantize",
        "--output",
        str(output),
        "--max-f1-drop",
        str(TINY_MODEL_THRESHOLDS["max_f1_drop_points"]),
        "--threads",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert "Result: **PASSED**" in result.stdout
    manifest = verify_bundle(output, load_model=True)
    assert manifest["quantization"]["dtype"] == "int8"
    assert f"bundle ready: {output}" in result.stderr
