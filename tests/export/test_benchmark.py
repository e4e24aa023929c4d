"""benchmarks/export_benchmark.py runs end to end (tiny model, a handful of calls: correctness, not speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from export.bundle import verify_bundle
from tests.fixtures.bundle import TINY_MODEL_GATE_ARGS


@pytest.mark.slow
def test_export_benchmark_runs_on_the_tiny_checkpoint(
    tiny_checkpoint: Path, sample_prepared: Any, tmp_path: Path, repo_root: Path
) -> None:
    out, bundle = tmp_path / "out", tmp_path / "bundle"
    cmd = [
        sys.executable,
        str(repo_root / "benchmarks" / "export_benchmark.py"),
        "--checkpoint", str(tiny_checkpoint),
        "--data", str(sample_prepared.output_dir),
        "--bundle", str(bundle),
        "--out", str(out),
        "--n-b1", "3",
        "--n-b16", "1",
        "--warmup", "1",
        "--rounds", "2",
        *TINY_MODEL_GATE_ARGS,  # production thresholds, the quality floor waived: tests/fixtures/bundle.py
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    for engine in ("torch-eager", "onnx-fp32", "onnx-int8"):
        assert f"| {engine} |" in result.stdout
    assert "| int8 file / fp32 file |" in result.stdout
    (raw,) = out.glob("export-benchmark-*.json")
    data = json.loads(raw.read_text())
    assert data["engines"]["onnx-int8"]["b1"]["sentences"] == 3  # 2 + 1 over two rounds
    assert data["engines"]["onnx-int8"]["rounds"] == 2
    assert data["engines"]["torch-eager"]["b16"]["sentences"] == 16
    assert all(data["engines"][e]["peak_rss_mb"] > 0 for e in data["engines"])
    assert data["ratios"]["int8_size_vs_fp32"] < 1.0
    manifest = verify_bundle(bundle, load_model=True)
    assert manifest["quantization"]["dtype"] == "int8"
    assert manifest["gate"]["production"] is False  # the waived floor is on record
