"""benchmarks/compare_runs.py on a real smoke training run (its report, saved logits and prepared split)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.compare_runs import main


def _copy_run(run: Path, dest: Path) -> Path:
    (dest / "metrics").mkdir(parents=True)
    for name in ("report.json", "val_logits.npy", "test_logits.npy"):
        shutil.copy(run / "metrics" / name, dest / "metrics" / name)
    return dest


def test_compare_runs_matches_the_report_and_pairs_the_difference(tiny_run_dir: Path, tmp_path: Path) -> None:
    report = json.loads((tiny_run_dir / "metrics" / "report.json").read_text())
    same = _copy_run(tiny_run_dir, tmp_path / "same")
    # a run that always answers the first label: its test macro-F1 is lower unless the smoke model already did
    always_first = _copy_run(tiny_run_dir, tmp_path / "always_first")
    test_logits = np.load(always_first / "metrics" / "test_logits.npy")
    constant = np.zeros_like(test_logits)
    constant[:, 0] = 5.0
    np.save(always_first / "metrics" / "test_logits.npy", constant)

    result = main(
        [
            str(tiny_run_dir),
            str(same),
            str(always_first),
            "--out",
            str(tmp_path / "out"),
            "--resamples",
            "300",
            "--group",
            f"recipe={tiny_run_dir},{same}",
        ]
    )
    first, copy, constant_row = result["rows"]
    # the same figures as the evaluation report of the run, from the saved logits and the prepared split
    assert first["test"]["macro_f1"] == pytest.approx(report["transformer"]["test"]["macro_f1"])
    assert first["val"]["macro_f1"] == pytest.approx(report["transformer"]["val"]["macro_f1"])
    assert "vs_first" not in first
    # a copy of the reference differs by exactly nothing on every resample
    assert copy["vs_first"] == {"mean": 0.0, "low": 0.0, "high": 0.0}
    # the constant run: recall 1 for the first label, 0 for the others; the paired interval brackets the
    # difference
    first_recall, *other_recalls = constant_row["test"]["recall"].values()
    assert first_recall == 1.0 and all(v == 0.0 for v in other_recalls)
    diff = (constant_row["test"]["macro_f1"] - first["test"]["macro_f1"]) * 100
    vs = constant_row["vs_first"]
    assert vs["low"] <= diff + 1e-9 and diff - 1e-9 <= vs["high"] and vs["low"] <= vs["high"]
    assert (
        0.0 <= first["calibration"]["test_ece_calibrated"] <= 1.0 and first["calibration"]["temperature"] > 0
    )
    assert result["groups"] == {"recipe": [first["test"]["macro_f1"]] * 2}
    table = (tmp_path / "out" / "compare_runs.md").read_text()
    assert "| always_first |" in table and "group recipe: n=2" in table
    assert (
        json.loads((tmp_path / "out" / "compare_runs.json").read_text())["rows"][0]["name"]
        == tiny_run_dir.name
    )


def test_compare_runs_refuses_runs_of_another_split(tiny_run_dir: Path, tmp_path: Path) -> None:
    other = _copy_run(tiny_run_dir, tmp_path / "other")
    test_logits = np.load(other / "metrics" / "test_logits.npy")
    np.save(other / "metrics" / "test_logits.npy", test_logits[:-1])
    with pytest.raises(SystemExit, match="not the same split"):
        main([str(tiny_run_dir), str(other), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="finished training run"):
        main([str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
