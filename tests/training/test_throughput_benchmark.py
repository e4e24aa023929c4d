"""The throughput benchmark script runs (tiny model, a couple of batches) and writes a comparable report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import train_throughput

pytestmark = pytest.mark.slow


def test_benchmark_compares_padding_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "bench.json"
    args = [
        "--data",
        "sample",
        "--model",
        "tiny",
        "--max-length",
        "64",
        "--batches",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--output",
        str(output),
    ]
    threads = torch.get_num_threads()
    try:
        assert train_throughput.main(args) == 0
    finally:
        torch.set_num_threads(threads)
    report = json.loads(output.read_text())
    modes = {r["mode"]: r for r in report["results"]}
    assert set(modes) == {"padded_to_max_length", "dynamic_padding", "dynamic_padding_length_grouped"}
    assert modes["padded_to_max_length"]["speedup_vs_padded"] == 1.0
    assert modes["padded_to_max_length"]["mean_padded_length"] == 64.0
    assert (
        modes["dynamic_padding_length_grouped"]["padding_fraction"]
        < modes["padded_to_max_length"]["padding_fraction"]
    )
    assert all(r["samples"] == 2 * 16 and r["samples_per_s"] > 0 for r in report["results"])
    assert "x padded" in capsys.readouterr().out
