"""SIGTERM under load: does every request accepted before the signal get its answer, and how fast is the exit?

Starts the real server (``python -m server``, the benchmarks' :class:`~benchmarks.overload.Server`) on a
bundle on 127.0.0.1, drives N closed-loop clients (``POST /predict``, each sends its next ticket when the last
one was answered) for ``--load-seconds``, sends SIGTERM to the server mid-load and keeps the clients going
until the process has exited. Per run it records:

- requests sent before the signal: how many the server refused at the door (503 "shutting down": the signal
  reached it before the request did, so it was never accepted), and of the others (accepted) how many got 200
  and what the rest got (the goal: every accepted request gets its 200);
- of those, the ones still in flight when the signal came (sent before, answered after);
- requests sent after the signal: 503 (``stopping``), connection refused (the listener is closed), a closed
  keep-alive connection, a reset (a connection still in the closed listener's backlog), or anything else; a
  request that times out is a hang (the goal: none);
- ``GET /ready`` 0.1 s after the signal (the goal: 503 or refused);
- seconds from SIGTERM to process exit, the exit code (the goal: 0), and whether the exit fits
  ``SHUTDOWN_TIMEOUT_S`` (from ``--env``, else the server's default) and Cloud Run's 10 s.

Usage (docs/benchmarks.md)::

    nice -n 0 uv run python -m benchmarks.shutdown --bundle bundles/<model_version> \\
        --texts ../shared/data/tickets/aa_dataset-tickets-multi-lang-5-2-50-version.csv \\
        --clients 16 --load-seconds 5 --repeats 3

Writes ``results.json`` and ``results.md`` to ``--output`` (default ``reports/shutdown/<time>``); exits 0
when every run passed, 1 otherwise. Bounded: at most 256 clients, 60 s of load, 10 repeats, a hard deadline
after each signal (then the server is killed and the run marked ``killed``); 127.0.0.1 only; every process it
starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import json
import os
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp

from benchmarks.overload import Server, machine_note
from benchmarks.serving.loadgen import require_local
from loadtests.payloads import DEFAULT_PAYLOAD_FILE, REPO_ROOT, load_tickets
from server.settings import Settings

MAX_CLIENTS = 256
MAX_LOAD_S = 60.0
MAX_REPEATS = 10
CLOUD_RUN_GRACE_S = 10.0
#: the server's default; ``--env SHUTDOWN_TIMEOUT_S=...`` overrides it
DEFAULT_SHUTDOWN_TIMEOUT_S = float(
    next(f.default for f in dataclasses.fields(Settings) if f.name == "shutdown_timeout_s")  # type: ignore[arg-type]
)
#: a request's time limit is the budget plus this (a request that hits it is a hang); a run's hard deadline
#: after the signal is the budget plus twice this
HANG_MARGIN_S = 5.0
#: outcomes that are a clean refusal (not an answer, never a hang)
STOPPING = (
    "503-stopping"  # refused before it was run: "the server is shutting down; retry on another instance"
)
DROPPED = "503-dropped"  # accepted, then dropped unrun when the shutdown budget ran out (a failure)
REFUSED = "ClientConnectorError"  # connect() refused: the listening socket is closed
RESET = "ClientOSError:ECONNRESET"  # a connection still in the closed listener's backlog, reset by the kernel
#: a pooled keep-alive connection the server closed while stopping (or aiohttp: "Can not write request body")
CLOSED = "ServerDisconnectedError"
HANGS = frozenset({"TimeoutError", "ServerTimeoutError", "ConnectionTimeoutError", "SocketTimeoutError"})
#: the first client exception of each kind (repr), for the report
EXAMPLES: dict[str, str] = {}
DEFAULT_TEXTS = (
    REPO_ROOT.parent / "shared" / "data" / "tickets" / "aa_dataset-tickets-multi-lang-5-2-50-version.csv"
)


@dataclass(slots=True)
class Sent:
    """One request: when it was sent and answered (event-loop clock) and what it got."""

    sent: float
    done: float
    outcome: str  # the HTTP status, or the client exception's class name


@dataclass(slots=True)
class RunResult:
    run: int
    clients: int
    load_s: float
    shutdown_timeout_s: float
    requests: list[Sent] = field(default_factory=list)
    signal_at: float = float("inf")
    exit_code: int | None = None
    exit_s: float | None = None
    killed: bool = False
    ready_after_signal: str = ""
    load_before: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        sent = [r for r in self.requests if r.sent < self.signal_at]
        after = [r for r in self.requests if r.sent >= self.signal_at]
        refused = [r for r in sent if r.outcome == STOPPING]
        accepted = [r for r in sent if r.outcome != STOPPING]
        in_flight = [r for r in accepted if r.done >= self.signal_at]
        before_out = Counter(r.outcome for r in sent)
        after_out = Counter(r.outcome for r in after)
        clean_after = {"200", STOPPING, REFUSED, RESET, CLOSED}
        hangs = sum(n for o, n in after_out.items() if o in HANGS) + sum(
            n for o, n in before_out.items() if o in HANGS
        )
        answered = before_out.get("200", 0)
        return {
            "run": self.run,
            "clients": self.clients,
            "load_s": self.load_s,
            "sent_before_signal": len(sent),
            "refused_before_signal": len(refused),
            "refused_max_lead_s": round(max((self.signal_at - r.sent for r in refused), default=0.0), 3),
            "accepted_before_signal": len(accepted),
            "answered_200": answered,
            "failed_before_signal": len(accepted) - answered,
            "before_signal_outcomes": dict(before_out),
            "in_flight_at_signal": len(in_flight),
            "in_flight_answered_200": sum(r.outcome == "200" for r in in_flight),
            "in_flight_last_answer_s": round(
                max((r.done - self.signal_at for r in in_flight), default=0.0), 3
            ),
            "after_signal": len(after),
            "after_signal_outcomes": dict(after_out),
            "after_signal_503": after_out.get(STOPPING, 0),
            "after_signal_refused": after_out.get(REFUSED, 0),
            "after_signal_reset": after_out.get(RESET, 0),
            "after_signal_closed": after_out.get(CLOSED, 0),
            "after_signal_other": {o: n for o, n in after_out.items() if o not in clean_after},
            "hangs": hangs,
            "ready_after_signal": self.ready_after_signal,
            "exit_code": self.exit_code,
            "sigterm_to_exit_s": None if self.exit_s is None else round(self.exit_s, 3),
            "killed": self.killed,
            "shutdown_timeout_s": self.shutdown_timeout_s,
            "fits_shutdown_timeout": self.exit_s is not None and self.exit_s <= self.shutdown_timeout_s,
            "fits_cloud_run_10s": self.exit_s is not None and self.exit_s <= CLOUD_RUN_GRACE_S,
            "all_accepted_answered": len(accepted) > 0 and answered == len(accepted),
            "after_signal_clean": hangs == 0 and all(o in clean_after for o in after_out),
            "load_avg_before": self.load_before,
        }


async def one_run(
    run: int,
    bundle: Path,
    bodies: Sequence[bytes],
    clients: int,
    load_s: float,
    env: dict[str, str],
    shutdown_timeout_s: float,
    out: Path,
    ready_timeout_s: float,
) -> RunResult:
    """A fresh server, ``clients`` closed-loop clients for ``load_s``, SIGTERM, clients on until it exits."""
    result = RunResult(run, clients, load_s, shutdown_timeout_s, load_before=_load())
    server = Server(f"run{run}", REPO_ROOT, bundle, env, out / f"server-run{run}.log")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    counter = iter(range(1 << 62))
    per_client_after_cap = 200  # requests a client sends after the signal, at most
    tasks: list[asyncio.Task[None]] = []
    try:
        server.start()
        assert server.proc is not None
        require_local(server.base_url)
        await server.ready(ready_timeout_s)
        url = server.base_url + "/predict"
        headers = {"Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=shutdown_timeout_s + HANG_MARGIN_S)

        async def client(session: aiohttp.ClientSession) -> None:
            after = 0
            while not stop.is_set() and after < per_client_after_cap:
                body = bodies[next(counter) % len(bodies)]
                began = loop.time()
                outcome = await _post(session, url, body, headers)
                result.requests.append(Sent(began, loop.time(), outcome))
                if began >= result.signal_at:
                    after += 1
                    if outcome != "200":
                        await asyncio.sleep(0.02)  # no busy loop against a closed port

        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            tasks = [asyncio.create_task(client(session)) for _ in range(clients)]
            await asyncio.sleep(load_s)
            result.signal_at = loop.time()
            server.proc.send_signal(signal.SIGTERM)
            probe = asyncio.create_task(_ready_status(server.base_url, delay_s=0.1))
            deadline = result.signal_at + shutdown_timeout_s + 2 * HANG_MARGIN_S
            while server.proc.poll() is None and loop.time() < deadline:
                await asyncio.sleep(0.005)
            if server.proc.poll() is None:
                result.killed = True
                server.proc.kill()
                await asyncio.to_thread(server.proc.wait, 10)
            else:
                result.exit_s = loop.time() - result.signal_at
            result.exit_code = server.proc.returncode
            result.ready_after_signal = await probe
            stop.set()
            done, pending = await asyncio.wait(tasks, timeout=shutdown_timeout_s + 2 * HANG_MARGIN_S)
            for task in pending:
                task.cancel()
            for task in done:
                task.result()  # a bug in the client loop must not pass silently
    finally:
        for task in tasks:
            task.cancel()
        server.stop()
    return result


async def _post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> str:
    """The status (a 503 told apart by the server's message: refused unrun, or dropped once accepted), or the
    client exception's class name."""
    try:
        async with session.post(url, data=body, headers=headers) as response:
            text = await response.text()
            if response.status == 503:
                if "shut down before this item ran" in text:
                    return DROPPED
                if "shutting down" in text:
                    return STOPPING
            return str(response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return _failure(exc)


def _failure(exc: BaseException) -> str:
    """The exception's class name; for a plain ClientOSError also its errno name (e.g. ECONNRESET)."""
    name = type(exc).__name__
    EXAMPLES.setdefault(name, repr(exc)[:300])
    if type(exc) is aiohttp.ClientOSError:
        if exc.errno is not None:
            return f"{name}:{errno.errorcode.get(exc.errno, exc.errno)}"
        if "Can not write request" in str(exc):  # aiohttp: the pooled connection was closed under it
            return CLOSED
    return name


async def _ready_status(base_url: str, delay_s: float) -> str:
    """``GET /ready`` just after the signal (own connection): 503 (stopping) or refused is what the platform
    should see."""
    await asyncio.sleep(delay_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as session,
            session.get(base_url + "/ready") as response,
        ):
            await response.read()
            return str(response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def shutdown_timeout(env: dict[str, str]) -> float:
    value = env.get("SHUTDOWN_TIMEOUT_S", os.environ.get("SHUTDOWN_TIMEOUT_S", ""))
    return float(value) if value.strip() else DEFAULT_SHUTDOWN_TIMEOUT_S


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| run | clients | load s | sent before SIGTERM | refused (503) | accepted | 200 | failed | "
        "in flight at SIGTERM (200) | "
        "after: 200 | 503 | refused | reset | closed | other | hangs | /ready after | SIGTERM to exit s | "
        "exit code | fits SHUTDOWN_TIMEOUT_S | fits 10 s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        exit_s = "killed" if r["killed"] else f"{r['sigterm_to_exit_s']:.2f}"
        lines.append(
            f"| {r['run']} | {r['clients']} | {r['load_s']:g} | {r['sent_before_signal']} | "
            f"{r['refused_before_signal']} | {r['accepted_before_signal']} | "
            f"{r['answered_200']} | {r['failed_before_signal']} | "
            f"{r['in_flight_at_signal']} ({r['in_flight_answered_200']}) | "
            f"{r['after_signal_outcomes'].get('200', 0)} | {r['after_signal_503']} | "
            f"{r['after_signal_refused']} | {r['after_signal_reset']} | {r['after_signal_closed']} | "
            f"{r['after_signal_other'] or ''} | "
            f"{r['hangs']} | {r['ready_after_signal']} | {exit_s} | {r['exit_code']} | "
            f"{'yes' if r['fits_shutdown_timeout'] else '**no**'} ({r['shutdown_timeout_s']:g} s) | "
            f"{'yes' if r['fits_cloud_run_10s'] else '**no**'} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.shutdown", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True, help="bundle dir to serve")
    p.add_argument(
        "--texts",
        type=Path,
        default=DEFAULT_TEXTS if DEFAULT_TEXTS.is_file() else DEFAULT_PAYLOAD_FILE,
        help="ticket CSV (default: the five-language file beside the checkout, else the embedded sample)",
    )
    p.add_argument("--n-texts", type=int, default=500, help="tickets read at most")
    p.add_argument("--clients", type=int, default=16, help=f"closed-loop clients (1..{MAX_CLIENTS})")
    p.add_argument(
        "--load-seconds", type=float, default=5.0, help=f"load before SIGTERM (0.2..{MAX_LOAD_S:g} s)"
    )
    p.add_argument("--repeats", type=int, default=1, help=f"runs, each on a fresh server (1..{MAX_REPEATS})")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server (repeatable)")
    p.add_argument("--ready-timeout", type=float, default=180.0, help="seconds to wait for /ready")
    p.add_argument("--output", type=Path, help="results dir (default reports/shutdown/<UTC time>)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients must be 1..{MAX_CLIENTS}")
    if not 0.2 <= args.load_seconds <= MAX_LOAD_S:
        parser.error(f"--load-seconds must be 0.2..{MAX_LOAD_S:g}")
    if not 1 <= args.repeats <= MAX_REPEATS:
        parser.error(f"--repeats must be 1..{MAX_REPEATS}")
    if not (args.bundle / "manifest.json").is_file():
        parser.error(f"--bundle {args.bundle} has no manifest.json (run `python -m export.onnx` first)")
    try:
        env = dict(kv.split("=", 1) for kv in args.env)
        budget = shutdown_timeout(env)
    except ValueError:
        parser.error("--env takes KEY=VALUE, and SHUTDOWN_TIMEOUT_S must be a number")
    tickets = load_tickets(args.texts, limit=args.n_texts)
    if not tickets:
        parser.error(f"no tickets in {args.texts}")
    bodies = [json.dumps(t.request()).encode() for t in tickets]
    out: Path = args.output or REPO_ROOT / "reports" / "shutdown" / datetime.now(UTC).strftime(
        "%Y%m%dT%H%M%SZ"
    )
    out.mkdir(parents=True, exist_ok=True)
    note = machine_note()
    rows: list[dict[str, Any]] = []
    # SIGTERM to this harness unwinds like Ctrl-C, so that every started server is stopped
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for run in range(1, args.repeats + 1):
            result = asyncio.run(
                one_run(
                    run,
                    args.bundle.resolve(),
                    bodies,
                    args.clients,
                    args.load_seconds,
                    env,
                    budget,
                    out,
                    args.ready_timeout,
                )
            )
            rows.append(result.summary())
            print(json.dumps(rows[-1]), flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    passed = all(
        r["all_accepted_answered"] and r["after_signal_clean"] and r["exit_code"] == 0 and not r["killed"]
        for r in rows
    )
    report = {
        "machine": note,
        "load_avg_after": _load(),
        "bundle": str(args.bundle),
        "texts": str(args.texts),
        "n_texts": len(bodies),
        "env": env,
        "shutdown_timeout_s": budget,
        "cloud_run_grace_s": CLOUD_RUN_GRACE_S,
        "runs": rows,
        "client_error_examples": dict(EXAMPLES),
        "passed": passed,
        "command": " ".join(["python", "-m", "benchmarks.shutdown", *(argv or sys.argv[1:])]),
    }
    header = (
        f"SIGTERM under load {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {note}\n"
        f"bundle {args.bundle}; texts {args.texts.name} ({len(bodies)}); env {env or 'defaults'}; "
        f"SHUTDOWN_TIMEOUT_S {budget:g}; passed: {'yes' if passed else '**no**'}\n\n"
    )
    _write_atomic(out / "results.json", json.dumps(report, indent=2) + "\n")
    _write_atomic(out / "results.md", header + to_markdown(rows) + "\n")
    print(header + to_markdown(rows))
    return 0 if passed else 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _write_atomic(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as fh:
        fh.write(text)
    Path(fh.name).replace(path)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
