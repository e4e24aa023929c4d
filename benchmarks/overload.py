"""Overload sweep: goodput under a retry storm, one server version against another, side by side.

Closed-loop clients send ``POST /predict`` and, on any answer other than 200 (429, 503, an error), retry the
same ticket at once (no back-off: the retry storm that makes outages grow). Per concurrency level it records
good RPS (200s per second), p50/p99 latency of the accepted attempts, p99 from first try to success, 429s
and 5xx. Every server runs as its own ``python -m server`` process on 127.0.0.1; levels alternate between the
versions so that load from other work on the machine hits both alike.

"before" is any git ref's ``server/`` (and ``bundle_contract/`` where it exists), exported into a temporary
directory with ``git archive``; "after" is the working tree. Usage (docs/loadtest.md)::

    nice -n 15 uv run python -m benchmarks.overload --bundle bundles/<model_version> --before-ref 01fdbce \\
        --texts ../shared/data/tickets/aa_dataset-tickets-multi-lang-5-2-50-version.csv \\
        --concurrency 1,16,128,256,512 --duration 10

Bounded: at most 1024 clients, 120 s per level, 127.0.0.1 only; every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.serving.loadgen import ServerExitedError, post_status, require_local, wait_ready
from loadtests.payloads import REPO_ROOT, load_tickets

DEFAULT_TEXTS = (
    REPO_ROOT.parent / "shared" / "data" / "tickets" / "aa_dataset-tickets-multi-lang-5-2-50-version.csv"
)
MAX_CLIENTS = 1024
MAX_LEVEL_S = 120.0


@dataclass(slots=True)
class StormResult:
    version: str
    clients: int
    duration_s: float
    ok: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    attempt_ms: list[float] = field(default_factory=list)  # accepted attempts only
    ticket_ms: list[float] = field(default_factory=list)  # first try to success, retries included

    def summary(self) -> dict[str, Any]:
        five_xx = sum(n for s, n in self.statuses.items() if s.isdigit() and s.startswith("5"))
        return {
            "version": self.version,
            "clients": self.clients,
            "duration_s": round(self.duration_s, 2),
            "good_rps": round(self.ok / self.duration_s, 1),
            "p50_ms": round(_pct(self.attempt_ms, 50), 1),
            "p99_ms": round(_pct(self.attempt_ms, 99), 1),
            "ticket_p99_ms": round(_pct(self.ticket_ms, 99), 1),
            "rejected_429": self.statuses.get("429", 0),
            "rejected_per_s": round(self.statuses.get("429", 0) / self.duration_s, 1),
            "status_5xx": five_xx,
            "other_errors": {s: n for s, n in self.statuses.items() if not s.isdigit()},
        }


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


async def storm(
    base_url: str, bodies: Sequence[bytes], clients: int, duration_s: float, warmup_s: float, version: str
) -> StormResult:
    """``clients`` closed-loop clients that retry at once; only completions inside the window count."""
    require_local(base_url)
    loop = asyncio.get_running_loop()
    window_start = loop.time() + warmup_s
    window_end = window_start + duration_s
    result = StormResult(version=version, clients=clients, duration_s=duration_s)
    url = base_url.rstrip("/") + "/predict"
    headers = {"Content-Type": "application/json"}
    counter = iter(range(1 << 62))

    async def client(session: aiohttp.ClientSession) -> None:
        while loop.time() < window_end:
            body = bodies[next(counter) % len(bodies)]
            first = loop.time()
            while loop.time() < window_end:  # retry the same ticket at once until it is answered
                began = loop.time()
                status = await post_status(session, url, body, headers)
                done = loop.time()
                if window_start <= done <= window_end:
                    result.statuses[status] += 1
                    if status == "200":
                        result.ok += 1
                        result.attempt_ms.append((done - began) * 1000)
                        result.ticket_ms.append((done - first) * 1000)
                if status == "200":
                    break

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return result


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def export_ref(ref: str, dest: Path) -> Path:
    """``server/`` (and ``bundle_contract/`` if the ref has it) of git ``ref``, extracted into ``dest``."""
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", ref, "server", "bundle_contract"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    archive = subprocess.run(["git", "archive", ref, *listed], cwd=REPO_ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


class Server:
    """``python -m server`` from ``root`` (its own ``server`` package) on a free 127.0.0.1 port."""

    def __init__(self, version: str, root: Path, bundle: Path, env: dict[str, str], log: Path) -> None:
        self.version = version
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in {"OMP_NUM_THREADS", "PYTHONPATH"}}
        self.env.update({"MODEL_DIR": str(bundle), "HOST": "127.0.0.1", "PORT": str(self.port), **env})
        self.root = root
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server"],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def ready(self, timeout_s: float) -> None:
        """Until ``/ready`` answers 200; a server that exits (it refused the bundle) ends the wait at once."""
        try:
            await wait_ready(self.base_url, timeout_s, proc=self.proc)
        except (TimeoutError, ServerExitedError) as exc:
            log = self.log.read_text(encoding="utf-8", errors="replace") if self.log.is_file() else ""
            why = f"exited with {exc.returncode}" if isinstance(exc, ServerExitedError) else "was not ready"
            raise SystemExit(
                f"error: the server {why} before it was ready; the end of its log ({self.log}):\n"
                + log[-2000:]
            ) from None

    def wait_until_ready(self, timeout_s: float) -> None:
        """:meth:`ready` for callers outside an event loop."""
        asyncio.run(self.ready(timeout_s))

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


@contextlib.contextmanager
def servers(
    specs: Sequence[tuple[str, Path]], bundle: Path, env: dict[str, str], out: Path
) -> Iterator[list[Server]]:
    running = [Server(v, root, bundle, env, out / f"server-{v}.log") for v, root in specs]
    try:
        for s in running:
            s.start()
        yield running
    finally:
        for s in running:
            s.stop()


def machine_note() -> str:
    model = "unknown"
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if f in flags]
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} CPUs, ISA {' '.join(isa) or 'none'}; load average {load}"


def medians(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (version, clients): the median of each figure over the rounds."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["version"], r["clients"]), []).append(r)
    out = []
    for (version, clients), group in groups.items():
        merged: dict[str, Any] = {"version": version, "clients": clients, "rounds": len(group)}
        for key in ("good_rps", "p50_ms", "p99_ms", "ticket_p99_ms", "rejected_per_s", "status_5xx"):
            merged[key] = statistics.median(r[key] for r in group)
        merged["status_5xx"] = sum(r["status_5xx"] for r in group)
        errors: Counter[str] = Counter()
        for r in group:
            errors.update(r["other_errors"])
        merged["other_errors"] = dict(errors)
        out.append(merged)
    return out


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| version | clients | good RPS | vs peak | p50 ms | p99 ms | ticket p99 ms | 429/s | 5xx | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    peaks: dict[str, float] = {}
    for r in rows:
        peaks[r["version"]] = max(peaks.get(r["version"], 0.0), r["good_rps"])
    for r in sorted(rows, key=lambda r: (r["version"], r["clients"])):
        peak = peaks[r["version"]] or math.nan
        lines.append(
            f"| {r['version']} | {r['clients']} | {r['good_rps']:.1f} | {r['good_rps'] / peak:.0%} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['ticket_p99_ms']:.1f} | {r['rejected_per_s']:.0f} | "
            f"{r['status_5xx']} | {r['other_errors'] or ''} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overload", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True, help="bundle dir both versions serve")
    p.add_argument("--before-ref", default="", help="git ref whose server/ is 'before' (default: none)")
    p.add_argument(
        "--texts", type=Path, default=DEFAULT_TEXTS, help="ticket CSV (default: five-language file)"
    )
    p.add_argument("--n-texts", type=int, default=500)
    p.add_argument("--concurrency", default="1,16,128,256,512", help="comma-separated client counts")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each level")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for both servers (repeatable)")
    p.add_argument("--output", type=Path, help="results dir (default reports/overload/<time>)")
    p.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for /ready")
    p.add_argument("--rounds", type=int, default=1, help="repeat the whole sweep; the table shows medians")
    p.add_argument(
        "--client-nice", type=int, default=4, help="niceness added to the load generator once servers run (4)"
    )
    return p


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if any(not 1 <= c <= MAX_CLIENTS for c in levels) or not 0 < args.duration <= MAX_LEVEL_S:
        raise SystemExit(f"levels must be 1..{MAX_CLIENTS} clients and duration 0..{MAX_LEVEL_S} s")
    tickets = load_tickets(args.texts, limit=args.n_texts)
    bodies = [json.dumps(t.request()).encode() for t in tickets]
    env = dict(kv.split("=", 1) for kv in args.env)
    out: Path = args.output or REPO_ROOT / "reports" / "overload" / datetime.now(UTC).strftime(
        "%Y%m%dT%H%M%S"
    )
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="overload-before-") as tmp:
        specs: list[tuple[str, Path]] = []
        if args.before_ref:
            specs.append((f"before ({args.before_ref})", export_ref(args.before_ref, Path(tmp))))
        specs.append(("after (working tree)", REPO_ROOT))
        with servers(specs, args.bundle.resolve(), env, out) as running:
            for s in running:
                await s.ready(args.ready_timeout)
            if args.client_nice:
                # the clients share the cores with the servers here; in production they run elsewhere. A lower
                # priority keeps their CPU from being counted against the server under test (both alike)
                os.nice(args.client_nice)
            for round_ in range(max(1, args.rounds)):
                for i, clients in enumerate(levels):
                    order = running if (i + round_) % 2 == 0 else list(reversed(running))
                    for s in order:
                        result = await storm(
                            s.base_url, bodies, clients, args.duration, args.warmup, s.version
                        )
                        rows.append({**result.summary(), "round": round_})
                        print(json.dumps(rows[-1]), flush=True)
                        await asyncio.sleep(1.0)  # let the storm's queue drain before the next level
    note = machine_note()
    table = to_markdown(medians(rows))
    header = (
        f"Overload sweep {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {note}\n"
        f"bundle {args.bundle} ; texts {args.texts.name} ({len(bodies)}); {args.duration:g} s per level; "
        f"env {env or 'defaults'}; load generator niceness +{args.client_nice} relative to the servers\n\n"
    )
    (out / "results.md").write_text(header + table + "\n")
    (out / "results.json").write_text(json.dumps({"machine": note, "rows": rows}, indent=2))
    print(header + table)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    asyncio.run(run(args))
    print(f"done in {time.perf_counter() - started:.0f} s; machine: {platform.machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
