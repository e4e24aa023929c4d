"""benchmarks.serving: issue 12's 1-client goal (server p50 vs in-process 1x2b1, 16-client RPS vs today)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.serving.ceiling import Layout, measure_latency, percentile
from benchmarks.serving.run import ServiceResult, one_client_goal, one_client_targets, render_markdown


def _level(concurrency: int, rps: float, p50: float) -> dict[str, object]:
    return {
        "concurrency": concurrency, "rps": float(rps), "p50_ms": p50, "p95_ms": p50 * 1.2,
        "p99_ms": p50 * 1.5, "error_count": 0, "errors": {}, "cpu_pct": 100.0, "loadgen_cpu_pct": 5.0,
        "peak_rss_mb": 200.0, "requests_ok": 10, "duration_s": 10.0,
    }  # fmt: skip


def test_ratios_and_targets_for_every_server_on_the_int8_bundle(tmp_path: Path) -> None:
    int8 = str((tmp_path / "int8").resolve())
    results = {
        "int8": ServiceResult(
            "int8", "idle on", {"MODEL_DIR": int8}, levels=[_level(1, 150, 6.5), _level(16, 190, 80)]
        ),
        "fp32": ServiceResult("fp32", "fp32", {"MODEL_DIR": "/elsewhere"}, levels=[_level(1, 60, 15.0)]),
        "noidle": ServiceResult(
            "noidle", "idle off", {"MODEL_DIR": int8}, levels=[_level(1, 80, 12.5), _level(16, 199, 78)]
        ),
    }
    lat = {"items": 500, "seconds": 8.0, "p90_ms": 8.0, "mean_ms": 6.0, "mean_tokens": 110.0}
    ceiling = {"latency": [{**lat, "layout": "1x1b1", "p50_ms": 9.0, "p99_ms": 12.0},
                           {**lat, "layout": "1x2b1", "p50_ms": 5.6, "p99_ms": 7.0}]}  # fmt: skip
    goal = one_client_goal(results, ceiling, tmp_path / "int8", reference="noidle")
    assert goal["inprocess_p50_ms"] == 5.6
    rows = goal["services"]
    assert rows["int8"]["p50_vs_inprocess"] == round(6.5 / 5.6, 3)
    assert rows["noidle"]["p50_vs_inprocess"] == round(12.5 / 5.6, 3)
    assert rows["fp32"]["p50_vs_inprocess"] is None  # another bundle: no in-process figure to compare with
    assert rows["int8"]["rps_16_vs_reference"] == round(190 / 199, 3)
    checks = {c["target"]: c["pass"] for c in one_client_targets(goal)}
    assert checks == {
        "int8: 1-client p50 <= 1.2x in-process 1x2b1 p50": True,
        "int8: 16-client RPS >= 95% of noidle's": True,  # 0.955
        "noidle: 1-client p50 <= 1.2x in-process 1x2b1 p50": False,
    }
    report = {
        "finished_at": "now", "machine": {"cpu_model": "cpu", "affinity_cpus": 2, "memory_gb": 8.0,
                                          "platform": "linux", "python": "3.11"},
        "load_before": [1.0, 1.0, 1.0], "load_after": [1.0, 1.0, 1.0],
        "texts": {"path": "t.csv", "count": 10, "mean_chars": 300.0}, "duration_s": 10.0, "warmup_s": 2.0,
        "services": {k: {"description": r.description, "cold_start_s": 1.0, "idle_rss_mb": 100.0,
                         "exit_code": 0, "levels": r.levels} for k, r in results.items()},
        "ceiling": ceiling, "ratios": {}, "one_client": goal, "targets": one_client_targets(goal),
    }  # fmt: skip
    markdown = render_markdown(report)
    assert "| int8 | 6.50 | 9.75 | 1.16 | 190.0 | 0.955 |" in markdown
    assert "| 1x2b1 |" in markdown and "vs noidle (goal >= 0.95)" in markdown


def test_without_latency_figures_there_is_no_ratio_and_no_target() -> None:
    results = {"int8": ServiceResult("int8", "x", {"MODEL_DIR": "/b"}, levels=[_level(1, 100, 8.0)])}
    goal = one_client_goal(results, {"best": None, "layouts": []}, Path("/b"))
    assert goal["services"]["int8"]["p50_vs_inprocess"] is None
    assert one_client_targets(goal) == []


def test_percentile_is_nearest_rank_and_latency_layouts_are_one_thread_one_ticket() -> None:
    assert percentile([float(i) for i in range(1, 101)], 50) == 50.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="must be 1xIb1"):
        measure_latency(Path("unused"), ["x"], Layout(2, 1, 1), 0.1)
