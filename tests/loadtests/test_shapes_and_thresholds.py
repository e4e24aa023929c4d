"""loadtests.shapes and loadtests.thresholds: the arithmetic the locustfile relies on (no locust import)."""

from __future__ import annotations

import pytest

from loadtests.shapes import ShapeSpec, parse_shape, target_at
from loadtests.thresholds import Limits, RunSummary, violations


def _users(spec: ShapeSpec, points: int = 100) -> list[int]:
    out = []
    for i in range(points):
        target = target_at(spec, spec.run_time_s * i / points)
        assert target is not None
        out.append(target[0])
    return out


def test_steady_holds_the_user_count_and_stops_at_run_time() -> None:
    spec = ShapeSpec("steady", users=8, spawn_rate=2.0, run_time_s=10.0)
    assert set(_users(spec)) == {8}
    assert target_at(spec, 0.0) == (8, 2.0)
    assert target_at(spec, 10.0) is None
    assert target_at(spec, 11.0) is None


def test_ramp_rises_monotonically_to_the_peak_and_holds_it() -> None:
    spec = ShapeSpec("ramp", users=10, spawn_rate=5.0, run_time_s=50.0)
    users = _users(spec)
    assert users == sorted(users)
    assert users[0] == 2 and users[-1] == 10
    assert len(set(users)) == 5  # five steps
    assert target_at(spec, 45.0) == (10, 5.0)  # the last fifth holds the peak


def test_spike_jumps_to_the_peak_in_the_middle_only() -> None:
    spec = ShapeSpec("spike", users=16, spawn_rate=1.0, run_time_s=100.0)
    assert target_at(spec, 10.0) == (4, 16.0)
    assert target_at(spec, 50.0) == (16, 16.0)
    assert target_at(spec, 80.0) == (4, 16.0)
    assert max(_users(spec)) == 16


@pytest.mark.parametrize(("name", "expected"), [("Steady", "steady"), (" spike ", "spike"), ("ramp", "ramp")])
def test_parse_shape_normalizes(name: str, expected: str) -> None:
    assert parse_shape(name) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "wave", "users": 1, "spawn_rate": 1.0, "run_time_s": 1.0},
        {"name": "steady", "users": 0, "spawn_rate": 1.0, "run_time_s": 1.0},
        {"name": "steady", "users": 1, "spawn_rate": 0.0, "run_time_s": 1.0},
        {"name": "steady", "users": 1, "spawn_rate": 1.0, "run_time_s": 0.0},
    ],
)
def test_invalid_shape_specs_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=r"unknown load shape|must be"):
        ShapeSpec(**kwargs)


def test_a_clean_run_passes() -> None:
    assert violations(RunSummary(100, 0, 50.0, 90.0), Limits()) == []


def test_each_limit_is_reported_on_its_own_line() -> None:
    limits = Limits(max_fail_ratio=0.01, max_p95_ms=100.0, max_p99_ms=200.0)
    problems = violations(RunSummary(num_requests=100, num_failures=2, p95_ms=150.0, p99_ms=250.0), limits)
    assert len(problems) == 3
    assert "failure ratio 2.00% (2/100)" in problems[0]
    assert "p95 latency 150 ms" in problems[1]
    assert "p99 latency 250 ms" in problems[2]


def test_failures_at_the_limit_pass_and_a_run_without_requests_fails() -> None:
    assert violations(RunSummary(100, 1, 1.0, 1.0), Limits(max_fail_ratio=0.01)) == []
    problems = violations(RunSummary(0, 0, 0.0, 0.0), Limits())
    assert len(problems) == 1 and "only 0 requests" in problems[0]


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="fail ratio"):
        Limits(max_fail_ratio=1.5)
    with pytest.raises(ValueError, match="latency"):
        Limits(max_p95_ms=0)


def test_storm_starts_everyone_at_once_and_holds() -> None:
    spec = ShapeSpec("storm", users=256, spawn_rate=1.0, run_time_s=30.0)
    assert set(_users(spec)) == {256}
    assert target_at(spec, 0.0) == (256, 256.0)  # spawned within a second
    assert target_at(spec, 30.0) is None
    assert parse_shape("STORM") == "storm"
