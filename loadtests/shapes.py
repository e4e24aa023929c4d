"""Load shapes (steady, ramp, spike, storm) as plain functions of elapsed time.

``storm`` is the retry storm: every user at once for the whole run (size ``-u`` at 2-4x the server's
capacity, MAX_QUEUE_SIZE + INFERENCE_WORKERS), and users that retry a refused request (429/503) at once.

The locustfile's ``LoadTestShape`` calls :func:`target_at` on every tick; keeping the arithmetic here
(no locust import) lets the test suite check it without gevent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

ShapeName = Literal["steady", "ramp", "spike", "storm"]
SHAPES: tuple[str, ...] = get_args(ShapeName)

DEFAULT_RUN_TIME_S = 60.0
RAMP_STEPS = 5
RAMP_HOLD_FRACTION = 0.2  # the last 20 % of a ramp holds the full user count
SPIKE_START, SPIKE_END = 0.4, 0.6  # the spike occupies the middle 20 % of the run
SPIKE_BASE_FRACTION = 0.25  # users outside the spike, as a fraction of the peak


@dataclass(frozen=True, slots=True)
class ShapeSpec:
    """A shape with its peak user count, spawn rate (users/s) and total run time (s)."""

    name: ShapeName
    users: int
    spawn_rate: float
    run_time_s: float

    def __post_init__(self) -> None:
        if self.name not in SHAPES:
            raise ValueError(f"unknown load shape {self.name!r}; choose one of {', '.join(SHAPES)}")
        if self.users < 1:
            raise ValueError(f"users must be at least 1, got {self.users}")
        if self.spawn_rate <= 0:
            raise ValueError(f"spawn rate must be positive, got {self.spawn_rate}")
        if self.run_time_s <= 0:
            raise ValueError(f"run time must be positive, got {self.run_time_s}")


def parse_shape(name: str) -> ShapeName:
    """Validate a shape name from an option or env var."""
    normalized = name.strip().lower()
    if normalized not in SHAPES:
        raise ValueError(f"unknown load shape {name!r}; choose one of {', '.join(SHAPES)}")
    return normalized  # type: ignore[return-value]


def target_at(spec: ShapeSpec, elapsed_s: float) -> tuple[int, float] | None:
    """``(user_count, spawn_rate)`` the run should have at ``elapsed_s``, or ``None`` once it is over."""
    if elapsed_s >= spec.run_time_s:
        return None
    fraction = max(0.0, elapsed_s) / spec.run_time_s
    if spec.name == "steady":
        return spec.users, spec.spawn_rate
    if spec.name == "storm":  # everyone at once, and they stay
        return spec.users, max(spec.spawn_rate, float(spec.users))
    if spec.name == "ramp":
        ramp_end = 1.0 - RAMP_HOLD_FRACTION
        step = min(RAMP_STEPS, math.floor(fraction / ramp_end * RAMP_STEPS) + 1)
        return max(1, math.ceil(spec.users * step / RAMP_STEPS)), spec.spawn_rate
    base = max(1, math.ceil(spec.users * SPIKE_BASE_FRACTION))
    if SPIKE_START <= fraction < SPIKE_END:
        # A spike arrives all at once: spawn the whole peak within about a second.
        return spec.users, max(spec.spawn_rate, float(spec.users))
    return base, max(spec.spawn_rate, float(spec.users))
