"""A small closed-loop HTTP load generator (aiohttp): N clients, each sending its next request when the last
answered, bounded in time and count, to 127.0.0.1 only.

Each client takes the next ticket from one shared sequence, so every service sees the same texts in the same
order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

logger = logging.getLogger("benchmarks.serving.loadgen")

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class LoadGenError(RuntimeError):
    """The load generator was asked for something it must not do (a remote host, a zero duration)."""


@dataclass(slots=True)
class LevelResult:
    """What one concurrency level measured (only requests that completed inside the measured window count)."""

    concurrency: int
    duration_s: float
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of successful latencies (ms); NaN when nothing succeeded."""
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        rank = max(1, math.ceil(q / 100.0 * len(ordered)))
        return ordered[rank - 1]

    def summary(self) -> dict[str, object]:
        return {
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "requests_ok": self.ok,
            "errors": dict(self.errors),
            "error_count": sum(self.errors.values()),
            "rps": round(self.rps, 2),
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
        }


def require_local(base_url: str) -> None:
    host = urlsplit(base_url).hostname
    if host not in LOCAL_HOSTS:
        raise LoadGenError(f"refusing to load-test {base_url!r}: this harness only targets 127.0.0.1")


async def post_status(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> str:
    """POST one request; its HTTP status as a string, or the client exception's name (timeouts, resets)."""
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            return str(response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


async def run_level(
    base_url: str,
    payloads: Sequence[dict[str, str]],
    concurrency: int,
    duration_s: float,
    warmup_s: float = 2.0,
    max_requests: int = 200_000,
    request_timeout_s: float = 60.0,
    path: str = "/predict",
    on_window: Callable[[str], None] | None = None,
) -> LevelResult:
    """Run ``concurrency`` closed-loop clients for ``warmup_s`` (discarded) then ``duration_s`` (measured).

    ``on_window("start")`` and ``on_window("end")`` run at the edges of the measured window (CPU sampling).
    """
    require_local(base_url)
    if duration_s <= 0 or concurrency < 1 or not payloads:
        raise LoadGenError(
            f"need duration > 0, concurrency >= 1 and payloads (got {duration_s}, {concurrency})"
        )
    bodies = [json.dumps(payload).encode() for payload in payloads]
    sequence: Iterator[bytes] = itertools.cycle(bodies)
    sent = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    window_start = start + warmup_s
    window_end = window_start + duration_s
    result = LevelResult(concurrency=concurrency, duration_s=duration_s)
    url = base_url.rstrip("/") + path
    headers = {"Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    if on_window is not None:
        loop.call_at(window_start, on_window, "start")
        loop.call_at(window_end, on_window, "end")

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        while loop.time() < window_end and sent < max_requests:
            sent += 1
            body = next(sequence)
            began = loop.time()
            status = await post_status(session, url, body, headers)
            finished = loop.time()
            if window_start <= finished <= window_end:
                if status == "200":
                    result.ok += 1
                    result.latencies_ms.append((finished - began) * 1000.0)
                else:
                    result.errors[status] += 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    measured_end = min(loop.time(), window_end)
    result.duration_s = max(1e-9, measured_end - window_start)
    if sent >= max_requests:
        logger.warning("stopped at the request cap (%d) before the end of the window", max_requests)
    return result


class ServerExitedError(RuntimeError):
    """The server process ended while :func:`wait_ready` waited for it (it refused its bundle, say)."""

    def __init__(self, returncode: int) -> None:
        super().__init__(f"the server exited with code {returncode} before it was ready")
        self.returncode = returncode


async def wait_ready(
    base_url: str,
    timeout_s: float,
    path: str = "/ready",
    proc: subprocess.Popen[bytes] | None = None,
) -> float:
    """Poll ``GET path`` until 200; return the seconds waited. Raises TimeoutError after ``timeout_s``.

    With ``proc`` (the server's process), a process that exits ends the wait at once with
    :class:`ServerExitedError` instead of a timeout: a server that refused its bundle is reported as that, not
    as slow.
    """
    require_local(base_url)
    began = time.perf_counter()
    deadline = began + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as session:
        while time.perf_counter() < deadline:
            if proc is not None and proc.poll() is not None:
                raise ServerExitedError(proc.returncode)
            try:
                async with session.get(base_url.rstrip("/") + path) as response:
                    if response.status == 200:
                        return time.perf_counter() - began
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{base_url}{path} did not answer 200 within {timeout_s:.0f} s")
