"""Side-by-side serving benchmark: (a) our server + int8 bundle, (b) our server + fp32 bundle, (c) FastAPI +
PyTorch eager baseline on the same checkpoint, plus the in-process int8 ceiling. Same texts, same order, same
concurrency levels and durations; everything on 127.0.0.1, every process it starts is stopped at the end.

Usage (docs/benchmarks.md)::

    uv run python -m benchmarks.serving.run \\
        --checkpoint outputs/bench-minilm/checkpoints/best \\
        --int8-bundle outputs/bench-minilm/bundle-int8 --fp32-bundle outputs/bench-minilm/bundle-fp32 \\
        --texts ../shared/data/tickets/helpdesk_customer_tickets.csv --concurrency 1,4,16,64 --duration 20

Writes ``results.json``, ``results.md`` and ``results.png`` to ``--output`` (default
``reports/serving/<time>``).
``--variant NAME:KEY=VAL,KEY=VAL`` adds runs of our server (int8 bundle) with other env settings, e.g.
``--variant w1:INFERENCE_WORKERS=1`` to compare thread layouts.

The 1-client goal of issue 12 in one command: the ceiling also measures in-process per-ticket latency
(``--ceiling-latency-layouts``, default ``1x1b1,1x2b1``: one thread, one ticket at a time), and the report
gives, for every server on the int8 bundle, ``1-client p50 / in-process 1x2b1 p50`` (goal <= 1.2) and its
16-client RPS, as a ratio to ``--reference`` (e.g. a ``noidle:ORT_IDLE_THREADS=0`` variant; goal >= 0.95)::

    uv run python -m benchmarks.serving.run --int8-bundle bundles/<v> --services int8 \\
        --variant noidle:ORT_IDLE_THREADS=0 --reference noidle --concurrency 1,16 --duration 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from benchmarks.serving.ceiling import DEFAULT_LATENCY_LAYOUTS, DEFAULT_LAYOUTS
from benchmarks.serving.loadgen import LevelResult, ServerExitedError, run_level, wait_ready
from loadtests.payloads import DEFAULT_PAYLOAD_FILE, REPO_ROOT, load_tickets

logger = logging.getLogger("benchmarks.serving.run")

SHARED_TEXTS = REPO_ROOT.parent / "shared" / "data" / "tickets" / "helpdesk_customer_tickets.csv"
BASELINE = "baseline"
#: issue 12: 1-client p50 <= 1.2x the in-process 2-thread latency, 16-client RPS within 5% of the reference
ONE_CLIENT_LAYOUT = "1x2b1"
ONE_CLIENT_MAX_RATIO = 1.2
RPS_MIN_RATIO = 0.95
# Children choose their own thread counts (ORT settings, torch's default): a harness-level cap must not leak.
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class BenchmarkError(RuntimeError):
    """A benchmark input is missing or a service did not come up."""


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    key: str
    description: str
    module: str
    env: dict[str, str]


@dataclass(slots=True)
class ServiceResult:
    key: str
    description: str
    env: dict[str, str]
    cold_start_s: float = math.nan
    idle_rss_mb: float = math.nan
    exit_code: int | None = None
    levels: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ManagedProcess:
    """A service process in its own session: SIGTERM to the group on stop, SIGKILL if it lingers."""

    def __init__(self, spec: ServiceSpec, port: int, log_path: Path) -> None:
        self.spec = spec
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _THREAD_ENV}
        env.update(self.spec.env)
        env.update({"HOST": "127.0.0.1", "PORT": str(self.port)})
        with self.log_path.open("wb") as log:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.spec.module],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        logger.info("started %s (pid %d) on port %d", self.spec.key, self.proc.pid, self.port)

    def processes(self) -> list[psutil.Process]:
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout_s: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s did not stop within %.0f s after SIGTERM: killing it", self.spec.key, timeout_s
                )
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout_s)
        logger.info("stopped %s (exit code %s)", self.spec.key, self.proc.returncode)
        return self.proc.returncode


class ResourceProbe:
    """CPU seconds and RSS of a process tree (the service) and of this harness (the load generator)."""

    def __init__(self, service: ManagedProcess) -> None:
        self.service = service
        self.me = psutil.Process()
        self.marks: dict[str, tuple[float, float, float]] = {}
        self.peak_rss = 0

    def _cpu(self, procs: Sequence[psutil.Process]) -> float:
        total = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def rss(self) -> int:
        total = 0
        for proc in self.service.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        self.peak_rss = max(self.peak_rss, total)
        return total

    def mark(self, name: str) -> None:
        self.marks[name] = (time.perf_counter(), self._cpu(self.service.processes()), self._cpu([self.me]))
        self.rss()

    def window(self) -> tuple[float, float]:
        """(service CPU %, load generator CPU %) over the last start/end marks; 100 % = one core."""
        (t0, s0, h0), (t1, s1, h1) = self.marks["start"], self.marks["end"]
        wall = max(t1 - t0, 1e-9)
        return 100.0 * (s1 - s0) / wall, 100.0 * (h1 - h0) / wall

    async def sample_rss(self, interval_s: float = 0.25) -> None:
        while True:
            self.rss()
            await asyncio.sleep(interval_s)


async def start_service(managed: ManagedProcess, ready_timeout_s: float) -> ServiceResult:
    """Spawn the service and wait for ``/ready``: cold start = spawn to the first 200."""
    spec = managed.spec
    result = ServiceResult(key=spec.key, description=spec.description, env=dict(spec.env))
    managed.start()
    try:
        await wait_ready(managed.base_url, ready_timeout_s, proc=managed.proc)
    except (TimeoutError, ServerExitedError) as exc:
        raise BenchmarkError(f"{spec.key} never became ready ({exc}); see {managed.log_path}") from None
    result.cold_start_s = round(time.perf_counter() - managed.started_at, 2)
    result.idle_rss_mb = round(ResourceProbe(managed).rss() / 2**20, 1)
    logger.info("%s ready after %.2f s, RSS %.0f MB", spec.key, result.cold_start_s, result.idle_rss_mb)
    return result


async def measure_level(
    managed: ManagedProcess,
    payloads: Sequence[dict[str, str]],
    concurrency: int,
    duration_s: float,
    warmup_s: float,
) -> dict[str, Any]:
    """One concurrency level against one service, with its CPU and peak RSS."""
    probe = ResourceProbe(managed)
    sampler = asyncio.create_task(probe.sample_rss())
    try:
        level: LevelResult = await run_level(
            managed.base_url, payloads, concurrency, duration_s, warmup_s, on_window=probe.mark
        )
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    service_cpu, loadgen_cpu = probe.window()
    row = level.summary()
    row.update(
        cpu_pct=round(service_cpu, 1),
        loadgen_cpu_pct=round(loadgen_cpu, 1),
        peak_rss_mb=round(probe.peak_rss / 2**20, 1),
    )
    logger.info(
        "%s c=%d: %.1f RPS p50 %.0f p99 %.0f ms, errors %d, CPU %.0f%%",
        managed.spec.key,
        concurrency,
        level.rps,
        level.percentile(50),
        level.percentile(99),
        row["error_count"],
        service_cpu,
    )
    return row


def run_ceiling_subprocess(
    bundle: Path,
    texts: Path,
    limit: int,
    duration_s: float,
    layouts: str,
    out: Path,
    latency_layouts: str = ",".join(DEFAULT_LATENCY_LAYOUTS),
) -> dict[str, Any]:
    """The in-process ceiling, in its own process so its threads never share this one's interpreter."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.serving.ceiling",
        "--bundle",
        str(bundle),
        "--texts",
        str(texts),
        "--limit",
        str(limit),
        "--duration",
        str(duration_s),
        "--layouts",
        layouts,
        "--latency-layouts",
        latency_layouts,
        "--json",
        str(out),
    ]
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_ENV}
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    if completed.returncode != 0:
        raise BenchmarkError(f"ceiling run failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return dict(json.loads(out.read_text(encoding="utf-8")))


def machine_info() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    for name in ("onnxruntime", "torch", "transformers", "litestar", "fastapi", "uvicorn", "tokenizers"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[name] = version(name)
    return {
        "cpu_model": cpu_model,
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def ratios(results: dict[str, ServiceResult], ceiling: dict[str, Any] | None) -> dict[str, Any]:
    base = results.get(BASELINE)
    base_levels = {row["concurrency"]: row for row in base.levels} if base else {}
    out: dict[str, Any] = {}
    best = float(ceiling["best"]["items_per_s"]) if ceiling and ceiling.get("best") else math.nan
    for key, result in results.items():
        per_level = {}
        for row in result.levels:
            ref = base_levels.get(row["concurrency"])
            per_level[str(row["concurrency"])] = {
                "rps_vs_baseline": _ratio(row["rps"], ref["rps"]) if ref else None,
                "p99_vs_baseline": _ratio(row["p99_ms"], ref["p99_ms"]) if ref else None,
                "rps_vs_ceiling": _ratio(row["rps"], best),
            }
        out[key] = per_level
    return out


def one_client_goal(
    results: dict[str, ServiceResult],
    ceiling: dict[str, Any] | None,
    int8_bundle: Path | None,
    reference: str | None = None,
    at: int = 16,
) -> dict[str, Any]:
    """Issue 12's 1-client goal per server: ``1-client p50 / in-process 1x2b1 p50`` (for servers on the bundle
    the ceiling measured, the int8 one) and the ``at``-client RPS, also as a ratio to ``reference``'s."""
    latency = {row["layout"]: row for row in (ceiling or {}).get("latency") or []}
    inproc = latency.get(ONE_CLIENT_LAYOUT, {}).get("p50_ms")
    bundle = str(int8_bundle.resolve()) if int8_bundle is not None else None
    ref = results.get(reference) if reference else None
    ref_rps = next((r["rps"] for r in ref.levels if r["concurrency"] == at), None) if ref else None
    services: dict[str, Any] = {}
    for key, result in results.items():
        by_level = {row["concurrency"]: row for row in result.levels}
        p50_1 = by_level[1]["p50_ms"] if 1 in by_level else None
        rps_at = by_level[at]["rps"] if at in by_level else None
        same_bundle = bundle is not None and result.env.get("MODEL_DIR") == bundle
        services[key] = {
            "p50_1_client_ms": p50_1,
            "p99_1_client_ms": by_level[1]["p99_ms"] if 1 in by_level else None,
            "p50_vs_inprocess": _ratio(p50_1, inproc)
            if same_bundle and p50_1 is not None and inproc
            else None,
            f"rps_{at}_clients": rps_at,
            f"rps_{at}_vs_reference": _ratio(rps_at, ref_rps) if rps_at is not None and ref_rps else None,
        }
    return {
        "inprocess_layout": ONE_CLIENT_LAYOUT,
        "inprocess_p50_ms": inproc,
        "inprocess_p99_ms": latency.get(ONE_CLIENT_LAYOUT, {}).get("p99_ms"),
        "reference": reference,
        "at_clients": at,
        "services": services,
    }


def one_client_targets(goal: dict[str, Any]) -> list[dict[str, Any]]:
    """The two halves of the goal as pass/fail rows (only where both figures were measured)."""
    checks: list[dict[str, Any]] = []
    at, ref = goal["at_clients"], goal["reference"]
    for key, row in goal["services"].items():
        if row["p50_vs_inprocess"] is not None:
            checks.append(
                {
                    "target": f"{key}: 1-client p50 <= {ONE_CLIENT_MAX_RATIO}x in-process "
                    f"{goal['inprocess_layout']} p50",
                    "value": row["p50_vs_inprocess"],
                    "pass": row["p50_vs_inprocess"] <= ONE_CLIENT_MAX_RATIO,
                }
            )
        ratio = row[f"rps_{at}_vs_reference"]
        if ref and key != ref and ratio is not None:
            checks.append(
                {
                    "target": f"{key}: {at}-client RPS >= {RPS_MIN_RATIO:.0%} of {ref}'s",
                    "value": ratio,
                    "pass": ratio >= RPS_MIN_RATIO,
                }
            )
    return checks


def _ratio(a: float, b: float) -> float | None:
    if not b or math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, 3)


def targets(
    results: dict[str, ServiceResult], ratio_table: dict[str, Any], at: int = 16
) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    level = ratio_table.get("int8", {}).get(str(at))
    if level is None:
        return checks
    rps_ratio, p99_ratio, ceiling_ratio = (
        level["rps_vs_baseline"],
        level["p99_vs_baseline"],
        level["rps_vs_ceiling"],
    )
    if rps_ratio is not None:
        checks.append(
            {
                "target": f"int8 RPS >= 3x baseline at {at} clients",
                "value": rps_ratio,
                "pass": rps_ratio >= 3.0,
            }
        )
    if p99_ratio is not None:
        checks.append(
            {
                "target": f"int8 p99 < baseline p99 at {at} clients",
                "value": p99_ratio,
                "pass": p99_ratio < 1.0,
            }
        )
    if ceiling_ratio is not None:
        checks.append(
            {
                "target": f"int8 RPS >= 85% of the in-process ceiling at {at} clients",
                "value": ceiling_ratio,
                "pass": ceiling_ratio >= 0.85,
            }
        )
    errors = sum(row["error_count"] for row in results["int8"].levels) if "int8" in results else 0
    checks.append({"target": "int8: zero errors at every level", "value": errors, "pass": errors == 0})
    return checks


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"# Serving benchmark ({report['finished_at']})",
        "",
        f"Machine: {machine['cpu_model']}, {machine['affinity_cpus']} usable CPUs, "
        f"{machine['memory_gb']} GiB RAM, "
        f"{machine['platform']}, Python {machine['python']}. Load average (1/5/15 min) before "
        f"{report['load_before']}, after {report['load_after']}. Texts: {report['texts']['path']} "
        f"({report['texts']['count']} tickets, {report['texts']['mean_chars']:.0f} chars on average). "
        f"{report['duration_s']:.0f} s measured per level after {report['warmup_s']:.0f} s warm-up; "
        "closed-loop clients on 127.0.0.1 (aiohttp, same process for all services); services "
        f"{report.get('order', 'interleaved')}.",
        "",
        "| service | clients | RPS | p50 ms | p95 ms | p99 ms | errors | CPU % | loadgen CPU % | peak RSS MB "
        "| RPS vs baseline | p99 vs baseline | RPS / ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, service in report["services"].items():
        for row in service["levels"]:
            ratio = report["ratios"].get(key, {}).get(str(row["concurrency"]), {})
            lines.append(
                f"| {key} | {row['concurrency']} | {_fmt(row['rps'])} | {_fmt(row['p50_ms'], 0)} | "
                f"{_fmt(row['p95_ms'], 0)} | {_fmt(row['p99_ms'], 0)} | {row['error_count']} | "
                f"{_fmt(row['cpu_pct'], 0)} | {_fmt(row['loadgen_cpu_pct'], 0)} | "
                f"{_fmt(row['peak_rss_mb'], 0)} | "
                f"{_fmt(ratio.get('rps_vs_baseline'), 2)} | {_fmt(ratio.get('p99_vs_baseline'), 2)} | "
                f"{_fmt(ratio.get('rps_vs_ceiling'), 2)} |"
            )
    lines += [
        "",
        "| service | what | cold start s (spawn to /ready 200) | idle RSS MB | exit code |",
        "|---|---|---:|---:|---:|",
    ]
    for key, service in report["services"].items():
        lines.append(
            f"| {key} | {service['description']} | {_fmt(service['cold_start_s'], 2)} | "
            f"{_fmt(service['idle_rss_mb'], 0)} | {_fmt(service['exit_code'])} |"
        )
    ceiling = report.get("ceiling")
    if ceiling and ceiling.get("layouts"):
        lines += [
            "",
            f"In-process ceiling ({ceiling['bundle']}, no HTTP; layout WxIbB = W threads x I ORT intra-op "
            "threads, batches of B):",
            "",
            "| layout | items/s | mean tokens |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {r['layout']} | {_fmt(r['items_per_s'])} | {_fmt(r['mean_tokens'])} |"
            for r in ceiling["layouts"]
        ]
    if ceiling and ceiling.get("latency"):
        lines += [
            "",
            "In-process per-ticket latency (one thread, one ticket at a time: tokenize + ORT, no HTTP):",
            "",
            "| layout | tickets | p50 ms | p90 ms | p99 ms | mean ms | mean tokens |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['layout']} | {r['items']} | {_fmt(r['p50_ms'], 2)} | {_fmt(r['p90_ms'], 2)} | "
            f"{_fmt(r['p99_ms'], 2)} | {_fmt(r['mean_ms'], 2)} | {_fmt(r['mean_tokens'])} |"
            for r in ceiling["latency"]
        ]
    goal = report.get("one_client")
    if goal:
        at, ref = goal["at_clients"], goal["reference"]
        lines += [
            "",
            f"1-client goal (issue 12): server 1-client p50 / in-process {goal['inprocess_layout']} p50 "
            f"({_fmt(goal['inprocess_p50_ms'], 2)} ms; goal <= {ONE_CLIENT_MAX_RATIO}), and {at}-client RPS"
            + (f" vs {ref} (goal >= {RPS_MIN_RATIO})" if ref else "")
            + ":",
            "",
            f"| service | 1-client p50 ms | 1-client p99 ms | p50 / in-process | {at}-client RPS | "
            "RPS vs reference |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {key} | {_fmt(row['p50_1_client_ms'], 2)} | {_fmt(row['p99_1_client_ms'], 2)} | "
            f"{_fmt(row['p50_vs_inprocess'], 2)} | {_fmt(row[f'rps_{at}_clients'])} | "
            f"{_fmt(row[f'rps_{at}_vs_reference'], 3)} |"
            for key, row in goal["services"].items()
        ]
    if report["targets"]:
        lines += ["", "| target | value | pass |", "|---|---:|---|"]
        lines += [
            f"| {t['target']} | {_fmt(t['value'], 2)} | {'yes' if t['pass'] else '**no**'} |"
            for t in report["targets"]
        ]
    return "\n".join(lines) + "\n"


def render_plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rps, ax_p99) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, service in report["services"].items():
        xs = [row["concurrency"] for row in service["levels"]]
        ax_rps.plot(xs, [row["rps"] for row in service["levels"]], marker="o", label=key)
        ax_p99.plot(xs, [row["p99_ms"] for row in service["levels"]], marker="o", label=key)
    if report.get("ceiling") and report["ceiling"].get("best"):
        best = report["ceiling"]["best"]
        ax_rps.axhline(best["items_per_s"], linestyle="--", color="grey", label=f"ceiling ({best['layout']})")
    levels = sorted({row["concurrency"] for s in report["services"].values() for row in s["levels"]})
    for ax, title, ylabel in ((ax_rps, "throughput", "requests/s"), (ax_p99, "p99 latency", "ms (log)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(level) for level in levels])
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    ax_p99.set_yscale("log")
    fig.suptitle("ticket-triage serving benchmark (127.0.0.1, indicative)")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def parse_env_pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, sep, rest = text.partition(":")
    if not sep or not name or name in {"int8", "fp32", BASELINE}:
        raise argparse.ArgumentTypeError(f"variant {text!r} must be NAME:KEY=VAL[,KEY=VAL] with a new NAME")
    return name, parse_env_pairs(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=Path("outputs/bench-minilm/checkpoints/best"))
    parser.add_argument("--int8-bundle", type=Path, default=Path("outputs/bench-minilm/bundle-int8"))
    parser.add_argument("--fp32-bundle", type=Path, default=Path("outputs/bench-minilm/bundle-fp32"))
    parser.add_argument(
        "--texts", type=Path, default=SHARED_TEXTS if SHARED_TEXTS.is_file() else DEFAULT_PAYLOAD_FILE
    )
    parser.add_argument("--text-limit", type=int, default=2000, help="tickets read at most")
    parser.add_argument("--concurrency", default="1,4,16,64", help="comma-separated client counts")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="discarded seconds before each level")
    parser.add_argument(
        "--services", default="int8,fp32,baseline", help="subset of int8,fp32,baseline to run (in this order)"
    )
    parser.add_argument(
        "--server-env",
        type=parse_env_pairs,
        default={},
        help="KEY=VAL,... for our server (int8 and fp32 runs)",
    )
    parser.add_argument(
        "--variant",
        type=parse_variant,
        action="append",
        default=[],
        help="NAME:KEY=VAL,... extra int8 server runs",
    )
    parser.add_argument("--baseline-max-length", type=int, help="baseline pad length (default: checkpoint's)")
    parser.add_argument(
        "--baseline-torch-threads", type=int, help="baseline torch threads (default: torch's)"
    )
    parser.add_argument(
        "--ceiling-duration", type=float, default=8.0, help="seconds per ceiling layout; 0: skip"
    )
    parser.add_argument(
        "--ceiling-layouts",
        default=",".join(DEFAULT_LAYOUTS),
        help="WxIbB thread/batch layouts for the ceiling",
    )
    parser.add_argument(
        "--ceiling-latency-layouts",
        default=",".join(DEFAULT_LATENCY_LAYOUTS),
        help="1xIb1 layouts for in-process per-ticket latency (the 1-client reference is 1x2b1); empty: skip",
    )
    parser.add_argument(
        "--reference",
        help="service or variant whose 16-client RPS is 'today' for the 1-client goal (e.g. noidle)",
    )
    parser.add_argument("--ready-timeout", type=float, default=180.0)
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="one service at a time (default: all up, levels interleaved)",
    )
    parser.add_argument("--output", type=Path, help="default reports/serving/<UTC time>")
    return parser


def plan_services(args: argparse.Namespace) -> list[ServiceSpec]:
    wanted = [s.strip() for s in args.services.split(",") if s.strip()]
    unknown = set(wanted) - {"int8", "fp32", BASELINE}
    if unknown:
        raise BenchmarkError(f"unknown services {sorted(unknown)}: choose from int8, fp32, baseline")
    quiet = {"LOG_LEVEL": "WARNING"}
    specs: list[ServiceSpec] = []
    for key in wanted:
        if key in {"int8", "fp32"}:
            bundle: Path = args.int8_bundle if key == "int8" else args.fp32_bundle
            _require(bundle / "manifest.json", f"--{key}-bundle: run `python -m export.onnx` first")
            env = {**quiet, **args.server_env, "MODEL_DIR": str(bundle.resolve())}
            specs.append(ServiceSpec(key, f"server (Litestar + ORT) {key} bundle", "server", env))
        else:
            _require(
                args.checkpoint / "labels.json", "--checkpoint: a checkpoint directory (contracts section 3)"
            )
            env = {"CHECKPOINT_DIR": str(args.checkpoint.resolve())}
            if args.baseline_max_length:
                env["BASELINE_MAX_LENGTH"] = str(args.baseline_max_length)
            if args.baseline_torch_threads:
                env["BASELINE_TORCH_THREADS"] = str(args.baseline_torch_threads)
            specs.append(
                ServiceSpec(
                    key, "FastAPI + PyTorch eager, padded", "benchmarks.serving.baseline_fastapi", env
                )
            )
    for name, overrides in args.variant:
        _require(args.int8_bundle / "manifest.json", "--int8-bundle (variants use it)")
        env = {**quiet, **args.server_env, **overrides, "MODEL_DIR": str(args.int8_bundle.resolve())}
        described = ",".join(f"{k}={v}" for k, v in overrides.items())
        specs.append(ServiceSpec(name, f"server int8 with {described}", "server", env))
    return specs


def _require(path: Path, hint: str) -> None:
    if not path.exists():
        raise BenchmarkError(f"{path} not found ({hint})")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Make SIGTERM unwind like Ctrl-C, so the finally blocks stop every started service."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def _bench_all(
    specs: Sequence[ServiceSpec], args: argparse.Namespace, payloads: list[dict[str, str]], out: Path
) -> tuple[dict[str, ServiceResult], dict[str, Any] | None]:
    """Interleaved (default): start every service one after the other, then run each level on each service in
    turn, so a change in the (shared) machine's load hits all services alike. ``--sequential``: one service
    process at a time. The ceiling runs right after the 16-client level (or the last level), close in time to
    the figures it is compared with."""
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    anchor = 16 if 16 in levels else levels[-1]
    results: dict[str, ServiceResult] = {}
    ceiling: dict[str, Any] | None = None
    want_ceiling = args.ceiling_duration > 0 and (args.int8_bundle / "manifest.json").is_file()

    def measure_ceiling() -> dict[str, Any]:
        # blocking on purpose: nothing else runs meanwhile (the services idle in their own processes)
        return run_ceiling_subprocess(
            args.int8_bundle,
            args.texts,
            args.text_limit,
            args.ceiling_duration,
            args.ceiling_layouts,
            out / "ceiling.json",
            args.ceiling_latency_layouts,
        )

    groups = [[spec] for spec in specs] if args.sequential else [list(specs)]
    for group in groups:
        managed = {
            spec.key: ManagedProcess(spec, free_port(), out / f"service-{spec.key}.log") for spec in group
        }
        try:
            for key, process in managed.items():
                results[key] = await start_service(process, args.ready_timeout)
            for concurrency in levels:
                for key, process in managed.items():
                    results[key].levels.append(
                        await measure_level(process, payloads, concurrency, args.duration, args.warmup)
                    )
                    await asyncio.sleep(0.5)
                if concurrency == anchor and want_ceiling and ceiling is None:
                    ceiling = measure_ceiling()
        finally:
            for key, process in managed.items():
                code = process.stop()
                if key in results:
                    results[key].exit_code = code
    if want_ceiling and ceiling is None:  # no service was run
        ceiling = measure_ceiling()
    return results, ceiling


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.output or REPO_ROOT / "reports" / "serving" / stamp
    out.mkdir(parents=True, exist_ok=True)
    try:
        specs = plan_services(args)
        if args.reference and args.reference not in {spec.key for spec in specs}:
            raise BenchmarkError(f"--reference {args.reference} is not one of the services or variants run")
        tickets = load_tickets(args.texts, args.text_limit)
    except (BenchmarkError, ValueError) as exc:
        logger.error("%s", exc)
        return 2
    payloads = [ticket.request() for ticket in tickets]
    load_before = [round(x, 2) for x in os.getloadavg()]
    logger.info("load average before: %s; %d tickets from %s", load_before, len(tickets), args.texts)
    try:
        with _sigterm_as_interrupt():
            results, ceiling = asyncio.run(_bench_all(specs, args, payloads, out))
    except KeyboardInterrupt:
        logger.error("interrupted: every started service was stopped; partial logs in %s", out)
        return 130
    except BenchmarkError as exc:
        logger.error("%s", exc)
        return 1
    ratio_table = ratios(results, ceiling)
    goal = one_client_goal(results, ceiling, args.int8_bundle, args.reference)
    report: dict[str, Any] = {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "texts": {
            "path": str(args.texts),
            "count": len(tickets),
            "mean_chars": sum(len(t.body) + len(t.subject) for t in tickets) / len(tickets),
        },
        "order": "one after the other" if args.sequential else "all started, levels interleaved",
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "services": {
            key: {
                "description": r.description,
                "env": {k: v for k, v in r.env.items() if k not in {"MODEL_DIR", "CHECKPOINT_DIR"}},
                "cold_start_s": r.cold_start_s,
                "idle_rss_mb": r.idle_rss_mb,
                "exit_code": r.exit_code,
                "levels": r.levels,
            }
            for key, r in results.items()
        },
        "ceiling": ceiling,
        "ratios": ratio_table,
        "one_client": goal,
        "targets": targets(results, ratio_table) + one_client_targets(goal),
        "command": " ".join(
            [Path(sys.executable).name, "-m", "benchmarks.serving.run", *(argv or sys.argv[1:])]
        ),
    }
    _write_atomic(out / "results.json", json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(report)
    _write_atomic(out / "results.md", markdown)
    render_plot(report, out / "results.png")
    print(markdown)
    logger.info("wrote %s/results.{json,md,png}", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
