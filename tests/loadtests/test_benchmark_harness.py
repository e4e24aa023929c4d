"""benchmarks.serving: the side-by-side harness (its arithmetic, its safety rails, and one tiny real run).

The tests live here because they exercise the load tooling; they would mirror ``benchmarks/`` as
``tests/benchmarks/`` if that folder is preferred.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from benchmarks.serving.ceiling import Layout
from benchmarks.serving.loadgen import LevelResult, LoadGenError, require_local, run_level
from benchmarks.serving.run import (
    ServiceResult,
    parse_env_pairs,
    parse_variant,
    ratios,
    render_markdown,
    targets,
)
from tests.loadtests.conftest import REPO_ROOT


def _level(concurrency: int, rps: float, p99: float, errors: int = 0) -> dict[str, object]:
    return {
        "concurrency": concurrency, "rps": rps, "p50_ms": p99 / 3, "p95_ms": p99 / 1.5, "p99_ms": p99,
        "error_count": errors, "errors": {}, "cpu_pct": 190.0, "loadgen_cpu_pct": 10.0, "peak_rss_mb": 300.0,
        "requests_ok": int(rps * 10), "duration_s": 10.0,
    }  # fmt: skip


def _results() -> dict[str, ServiceResult]:
    return {
        "int8": ServiceResult(
            "int8", "server int8", {}, 1.2, 250.0, 0, [_level(1, 40.0, 30.0), _level(16, 60.0, 400.0)]
        ),
        "baseline": ServiceResult(
            "baseline", "fastapi", {}, 9.0, 900.0, 0, [_level(1, 10.0, 120.0), _level(16, 15.0, 2000.0)]
        ),
    }


def test_percentiles_are_nearest_rank() -> None:
    level = LevelResult(concurrency=1, duration_s=2.0, ok=100, latencies_ms=[float(i) for i in range(1, 101)])
    assert level.percentile(50) == 50.0
    assert level.percentile(99) == 99.0
    assert level.percentile(100) == 100.0
    assert level.rps == 50.0
    assert math.isnan(LevelResult(concurrency=1, duration_s=1.0).percentile(50))


@pytest.mark.parametrize("url", ["http://10.0.0.1:8080", "https://example.run.app", "http://0.0.0.0:80"])
def test_only_loopback_is_ever_targeted(url: str) -> None:
    with pytest.raises(LoadGenError, match=r"only targets 127\.0\.0\.1"):
        require_local(url)
    with pytest.raises(LoadGenError):
        asyncio.run(run_level(url, [{"text": "x"}], concurrency=1, duration_s=1.0))


def test_ratios_and_targets_against_the_baseline_and_ceiling() -> None:
    results = _results()
    ceiling = {"best": {"layout": "2x1b1", "items_per_s": 64.0}}
    table = ratios(results, ceiling)
    assert table["int8"]["16"] == {"rps_vs_baseline": 4.0, "p99_vs_baseline": 0.2, "rps_vs_ceiling": 0.938}
    assert table["baseline"]["1"]["rps_vs_baseline"] == 1.0
    checks = {c["target"]: c for c in targets(results, table)}
    assert checks["int8 RPS >= 3x baseline at 16 clients"]["pass"] is True
    assert checks["int8 p99 < baseline p99 at 16 clients"]["pass"] is True
    assert checks["int8 RPS >= 85% of the in-process ceiling at 16 clients"]["pass"] is True
    results["int8"].levels[1] = _level(16, 30.0, 2500.0, errors=3)
    failing = {c["target"]: c["pass"] for c in targets(results, ratios(results, ceiling))}
    assert not any(failing.values())


def test_markdown_table_has_one_row_per_service_and_level() -> None:
    results = _results()
    table = ratios(results, None)
    report = {
        "finished_at": "now", "machine": {"cpu_model": "cpu", "affinity_cpus": 2, "memory_gb": 24.0,
                                          "platform": "linux", "python": "3.11"},
        "load_before": [1.0, 1.0, 1.0], "load_after": [2.0, 1.0, 1.0],
        "texts": {"path": "t.csv", "count": 10, "mean_chars": 300.0}, "duration_s": 10.0, "warmup_s": 2.0,
        "services": {k: {"description": r.description, "cold_start_s": r.cold_start_s,
                         "idle_rss_mb": r.idle_rss_mb, "exit_code": r.exit_code, "levels": r.levels}
                     for k, r in results.items()},
        "ceiling": None, "ratios": table, "targets": targets(results, table),
    }  # fmt: skip
    markdown = render_markdown(report)
    rows = [line for line in markdown.splitlines() if line.startswith(("| int8 |", "| baseline |"))]
    assert len(rows) == 4 + 2  # 2 services x 2 levels, plus the cold-start table
    assert "| int8 | 16 | 60.0 | 133 | 267 | 400 | 0 |" in markdown
    assert "| 4.00 | 0.20 | - |" in markdown


def test_variant_and_env_options_parse_and_reject_bad_input() -> None:
    assert parse_env_pairs("INFERENCE_WORKERS=1, MAX_BATCH_SIZE=8") == {
        "INFERENCE_WORKERS": "1",
        "MAX_BATCH_SIZE": "8",
    }
    assert parse_variant("w1:INFERENCE_WORKERS=1") == ("w1", {"INFERENCE_WORKERS": "1"})
    for bad in ("int8:X=1", "noenv", ":X=1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_variant(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_env_pairs("NOVALUE")
    assert Layout.parse("2x1b8") == Layout(2, 1, 8)
    with pytest.raises(ValueError, match="WxIbB"):
        Layout.parse("2x0b1")


@pytest.mark.slow
def test_a_tiny_side_by_side_run_writes_table_plot_and_stops_every_service(
    tiny_bundle: Path, tiny_bundle_fp32: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    texts = REPO_ROOT / "data" / "sample" / "tickets.csv"
    command = [
        sys.executable, "-m", "benchmarks.serving.run",
        "--checkpoint", str(tiny_checkpoint), "--int8-bundle", str(tiny_bundle),
        "--fp32-bundle", str(tiny_bundle_fp32), "--texts", str(texts), "--text-limit", "100",
        "--concurrency", "2", "--duration", "2", "--warmup", "0.5",
        "--ceiling-duration", "0.5", "--ceiling-layouts", "1x1b1",
        "--variant", "w1:INFERENCE_WORKERS=1", "--output", str(tmp_path),
    ]  # fmt: skip
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert list(report["services"]) == ["int8", "fp32", "baseline", "w1"]
    for key, service in report["services"].items():
        (level,) = service["levels"]
        assert level["requests_ok"] > 0 and level["error_count"] == 0, key
        assert level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"], key
        assert service["cold_start_s"] > 0 and service["idle_rss_mb"] > 10, key
    assert report["services"]["w1"]["env"]["INFERENCE_WORKERS"] == "1"
    assert report["ratios"]["baseline"]["2"]["rps_vs_baseline"] == 1.0
    assert report["ceiling"]["best"]["items_per_s"] > 0
    assert (tmp_path / "results.png").stat().st_size > 5000
    assert "| int8 | 2 |" in (tmp_path / "results.md").read_text(encoding="utf-8")
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after <= before  # every service process it started is gone
