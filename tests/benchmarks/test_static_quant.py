"""benchmarks/static_quant.py on the tiny checkpoint: the real export's fp32, dynamic and static QDQ int8."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.static_quant import agreement, main

pytestmark = pytest.mark.slow


def test_agreement_counts_flips_and_non_ties() -> None:
    reference = np.array([[3.0, 0.0, 0.0], [0.0, 0.05, 0.0], [0.0, 0.0, 4.0], [2.0, 0.0, 0.0]])
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 0.05], [4.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    a = agreement(reference, logits, tie_margin=0.1)
    # row 1 is a near-tie (margin ~0.017): its flip counts in raw, not on non-ties
    assert a == {"raw": 0.5, "non_tie": 2 / 3, "n_non_tie": 3, "flips": 2, "non_tie_flips": 1}


def test_static_quant_benchmark_on_the_tiny_checkpoint(
    tiny_checkpoint: Path, tiny_run_dir: Path, tmp_path: Path
) -> None:
    result = main(
        [
            "--checkpoint",
            str(tiny_checkpoint),
            "--prepared",
            str(tiny_run_dir / "processed"),
            "--out",
            str(tmp_path),
            "--calibration-rows",
            "16",
            "--methods",
            "minmax",
            "percentile",  # a histogram calibrator: padded calibration feeds
            "--limit",
            "20",
        ]
    )
    assert list(result["models"]) == ["fp32", "dynamic", "static-minmax", "static-percentile"]
    assert result["machine"]["cpu"] and result["settings"]["isa"]
    for name, model in result["models"].items():
        assert model["mb"] > 0
        for split in ("val", "test"):
            s = model["splits"][split]
            assert s["n"] == 20 and 0.0 <= s["macro_f1"] <= 1.0 and s["median_ms"] > 0
            assert s["agreement"]["flips"] == round(s["n"] * (1 - s["agreement"]["raw"]))
            if name == "fp32":
                assert s["agreement"]["raw"] == 1.0 and s["agreement"]["flips"] == 0
    assert json.loads((tmp_path / "static_quant.json").read_text()) == result
    table = (tmp_path / "static_quant.md").read_text()
    assert "| static-minmax | test |" in table and result["machine"]["cpu"] in table
