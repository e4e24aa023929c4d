"""``python -m export.onnx`` as a user runs it: exit codes and one clear message on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from export.bundle import verify_bundle
from tests.fixtures.bundle import TINY_MODEL_GATE_ARGS


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
def test_documented_command_writes_a_verified_calibrated_bundle(
    tiny_checkpoint: Path, sample_prepared: Any, tmp_path: Path
) -> None:
    """docs/export.md's example at production thresholds, with the tiny model's quality floor waived (see
    tests/fixtures/bundle.py): the bundle says it was built with a loosened gate, and carries calibration."""
    output = tmp_path / "bundle"
    result = run_cli(
        "--checkpoint",
        str(tiny_checkpoint),
        "--data",
        str(sample_prepared.output_dir),
        "--quantize",
        "--output",
        str(output),
        "--threads",
        "1",
        *TINY_MODEL_GATE_ARGS,
    )
    assert result.returncode == 0, result.stderr
    assert "Result: **PASSED WITH A LOOSENED GATE**" in result.stdout
    assert "Not the production gate: quality floor waived (--allow-below-baseline)." in result.stdout
    assert "verification gate passed with a LOOSENED gate" in result.stderr
    manifest = verify_bundle(output, load_model=True)
    assert manifest["quantization"]["dtype"] == "int8"
    assert f"bundle ready: {output}" in result.stderr
    gate = manifest["gate"]
    assert gate["passed"] is True and gate["production"] is False
    assert gate["loosened"] == ["quality floor waived (--allow-below-baseline)"]
    assert (
        gate["thresholds"]["max_f1_drop_points"] == 1.0
        and gate["thresholds"]["min_non_tie_agreement"] == 0.99
    )
    # the quality floor ran and reports both numbers, on the test split
    floor = manifest["metrics"]["quality_floor"]
    assert floor["split"] == "test" and floor["n"] == len(sample_prepared.test)
    assert 0.0 <= floor["model_macro_f1"] <= 1.0 and 0.0 < floor["baseline_macro_f1"] <= 1.0
    assert floor["waived"] is True
    # calibration fitted on the served int8 logits of val (--bias auto -> export.pipeline.AUTO_TUNE_BIAS)
    calibration, review = manifest["calibration"], manifest["review"]
    assert calibration["fitted_on"] == "val" and calibration["n"] == len(sample_prepared.val)
    assert calibration["temperature"] > 0 and len(calibration["bias"]) == len(manifest["labels"])
    assert 0.0 <= review["threshold"] <= 1.0 and review["target_accuracy"] == 0.7
    cal = manifest["metrics"]["calibration"]
    from export.pipeline import AUTO_TUNE_BIAS

    expected_mode = "bias + temperature" if AUTO_TUNE_BIAS else "temperature only"
    assert cal["mode"] == f"{expected_mode} (--bias auto default)" and set(cal["splits"]) == {"val", "test"}
    for split in cal["splits"].values():
        assert {"raw_ece", "calibrated_ece", "raw_coverage_at_70", "calibrated_coverage_at_70"} <= set(split)
    report = (output / "report.md").read_text()
    for section in (
        "## Quality floor (test split",
        "## Calibration (fitted on val",
        "coverage at 70% accuracy",
    ):
        assert section in report
    # what the server will load: the same blocks, through the torch-free contract reader
    from bundle_contract import load_bundle

    loaded = load_bundle(output).manifest  # verifies checksums and the calibration/review values
    assert loaded.calibration is not None and loaded.review is not None
    assert loaded.review.threshold == review["threshold"]
