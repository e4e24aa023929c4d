"""Pass/fail thresholds of a load test run: failure ratio, p95 and p99 latency.

The locustfile feeds locust's aggregated stats in on ``events.quitting`` and sets the process exit code from
the result, so a CI job or a deploy gate can rely on ``locust ... --headless`` exiting non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Largest acceptable values; ``min_requests`` guards against a run that never reached the server."""

    max_fail_ratio: float = 0.01
    max_p95_ms: float = 2_000.0
    max_p99_ms: float = 5_000.0
    min_requests: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_fail_ratio <= 1.0:
            raise ValueError(f"max fail ratio must be within [0, 1], got {self.max_fail_ratio}")
        if self.max_p95_ms <= 0 or self.max_p99_ms <= 0:
            raise ValueError(
                f"latency limits must be positive, got p95={self.max_p95_ms} p99={self.max_p99_ms}"
            )


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The aggregated figures of a run (locust's ``stats.total``)."""

    num_requests: int
    num_failures: int
    p95_ms: float
    p99_ms: float

    @property
    def fail_ratio(self) -> float:
        return self.num_failures / self.num_requests if self.num_requests else 0.0


def violations(summary: RunSummary, limits: Limits) -> list[str]:
    """One readable line per exceeded limit; empty when the run passes."""
    problems: list[str] = []
    if summary.num_requests < limits.min_requests:
        problems.append(
            f"only {summary.num_requests} requests were made (need at least {limits.min_requests}): "
            "is the host right and the server ready?"
        )
    if summary.fail_ratio > limits.max_fail_ratio:
        problems.append(
            f"failure ratio {summary.fail_ratio:.2%} ({summary.num_failures}/{summary.num_requests}) "
            f"exceeds {limits.max_fail_ratio:.2%}"
        )
    if summary.p95_ms > limits.max_p95_ms:
        problems.append(f"p95 latency {summary.p95_ms:.0f} ms exceeds {limits.max_p95_ms:.0f} ms")
    if summary.p99_ms > limits.max_p99_ms:
        problems.append(f"p99 latency {summary.p99_ms:.0f} ms exceeds {limits.max_p99_ms:.0f} ms")
    return problems
