"""Server start-up benchmark: cold start (process start -> GET /ready 200), RSS after warm-up, install size.

Rerunnable; every figure comes from real `python -m server` processes on 127.0.0.1:

    nice -n 10 uv run python benchmarks/server_startup.py --bundle bundles/minilm-bench --runs 5
    # with the interpreter of a venv holding only the server group (what the image installs), and its size:
    nice -n 10 uv run python benchmarks/server_startup.py --bundle bundles/minilm-bench \
        --server-venv /tmp/srv --build-venv

- cold start: wall time from ``Popen`` to the first 200 of ``GET /ready`` (polled every 5 ms), which includes
  interpreter start, imports, bundle checksum verification, ORT session creation and the warm-up inference;
- RSS after warm-up: ``VmRSS`` of the server process after ``--warm`` predictions of real ticket texts
  (``../shared/data/tickets`` when present, else synthetic text), and its peak ``VmHWM``;
- shutdown: SIGTERM -> exit, with the exit code;
- install size: total size of the venv built from ``uv.lock`` with only the ``server`` group
  (``uv export --only-group server`` -> ``uv venv`` -> ``uv pip install``), and its largest packages.

Prints a markdown table with the issue's targets (cold start < 3 s, RSS < 400 MB, install < 350 MB) and writes
the raw JSON to ``outputs/benchmarks/server_startup.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "tickets" / "dataset-tickets-multi-lang-4-20k.csv"
TARGETS = {"cold_start_s": 3.0, "rss_mb": 400.0, "install_mb": 350.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ticket_texts(n: int) -> list[dict[str, str]]:
    if SHARED.is_file():
        with SHARED.open(newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if (r.get("body") or "").strip()]
        return [{"subject": r.get("subject") or "", "text": r["body"]} for r in rows[:n]]
    return [
        {"text": f"Ticket {i}: the VPN disconnects every few minutes since the update. " * 5}
        for i in range(n)
    ]


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # 127.0.0.1 only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _post(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # 127.0.0.1 only
        return int(response.status)


def _proc_status(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            out[key] = int(value.split()[0]) / 1024.0  # kB -> MiB
    return out


def one_run(python: str, bundle: Path, warm: list[dict[str, str]], threads: str) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "MODEL_DIR": str(bundle),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    env["OMP_NUM_THREADS"] = threads
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [python, "-m", "server"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            cold = None
            while time.perf_counter() - started < 120:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"server exited with {proc.returncode}: {log.read().decode()[-2000:]}")
                try:
                    if _get(f"{base}/ready", timeout=1.0) == 200:
                        cold = time.perf_counter() - started
                        break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                time.sleep(0.005)
            if cold is None:
                raise RuntimeError("server not ready after 120 s")
            first_started = time.perf_counter()
            assert _post(f"{base}/predict", warm[0]) == 200
            first_request_s = time.perf_counter() - first_started
            for ticket in warm[1:]:
                assert _post(f"{base}/predict", ticket) == 200
            memory = _proc_status(proc.pid)
            stop_started = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            return {
                "cold_start_s": cold,
                "first_request_s": first_request_s,
                "rss_mb": memory["VmRSS"],
                "peak_rss_mb": memory["VmHWM"],
                "shutdown_s": time.perf_counter() - stop_started,
                "exit_code": code,
            }
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def dir_size_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            p = Path(root) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return total / (1 << 20)


def build_server_venv(venv: Path) -> None:
    """A venv with exactly the locked `server` group (what docker/server.Dockerfile installs)."""
    requirements = subprocess.run(
        ["uv", "export", "--frozen", "--only-group", "server", "--no-hashes", "--no-emit-project"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write(requirements)
    try:
        subprocess.run(
            [
                "uv",
                "venv",
                "--clear",
                "--python",
                f"{sys.version_info.major}.{sys.version_info.minor}",
                str(venv),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "uv",
                "pip",
                "install",
                "--compile-bytecode",
                "--python",
                str(venv / "bin" / "python"),
                "-r",
                fh.name,
            ],
            check=True,
            capture_output=True,
        )
    finally:
        Path(fh.name).unlink()


def venv_report(venv: Path) -> dict[str, Any]:
    site = next((venv / "lib").glob("python3*/site-packages"))
    packages: dict[str, float] = {}
    for entry in site.iterdir():
        if entry.name.endswith((".dist-info", ".pth")) or entry.name == "__pycache__":
            continue
        size = dir_size_mb(entry) if entry.is_dir() else entry.stat().st_size / (1 << 20)
        packages[entry.name] = packages.get(entry.name, 0.0) + size
    largest = dict(sorted(packages.items(), key=lambda kv: -kv[1])[:8])
    return {"install_mb": dir_size_mb(venv), "site_packages_mb": dir_size_mb(site), "largest_mb": largest}


def import_time_s(python: str, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([python, "-c", "import server.app, server.__main__"], cwd=REPO, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, action="append", required=True, help="bundle dir (repeatable)")
    parser.add_argument("--runs", type=int, default=5, help="cold starts per bundle")
    parser.add_argument("--warm", type=int, default=50, help="predictions before reading RSS")
    parser.add_argument(
        "--server-venv", type=Path, help="run the server with this venv's python (server group)"
    )
    parser.add_argument(
        "--build-venv", action="store_true", help="(re)build --server-venv from uv.lock first"
    )
    parser.add_argument("--threads", default="1", help="OMP_NUM_THREADS for the server")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "server_startup.json")
    args = parser.parse_args()

    python = sys.executable
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()}}
    if args.server_venv:
        if args.build_venv:
            build_server_venv(args.server_venv)
        python = str(args.server_venv / "bin" / "python")
        report["venv"] = venv_report(args.server_venv)
    report["python"] = python
    report["import_s"] = import_time_s(python)
    warm = ticket_texts(args.warm)
    report["bundles"] = {}
    for bundle in args.bundle:
        runs = [one_run(python, bundle.resolve(), warm, args.threads) for _ in range(args.runs)]
        model_mb = (bundle / "model.onnx").stat().st_size / (1 << 20)
        report["bundles"][str(bundle)] = {"model_mb": model_mb, "runs": runs}
    report["machine"]["load_avg_end"] = os.getloadavg()

    print(
        f"python: {python}; import server.app: {report['import_s']:.2f} s; cpus {os.cpu_count()}; "
        f"load avg start {report['machine']['load_avg_start'][0]:.1f}, "
        f"end {report['machine']['load_avg_end'][0]:.1f}"
    )
    print(
        "\n| bundle | model MB | cold start s (median, min-max) | first request ms | RSS after warm-up MB | "
        "peak RSS MB | shutdown s | exit codes |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, b in report["bundles"].items():
        runs = b["runs"]
        cold = [r["cold_start_s"] for r in runs]
        first_ms = statistics.median(r["first_request_s"] for r in runs) * 1000
        rss = statistics.median(r["rss_mb"] for r in runs)
        peak = max(r["peak_rss_mb"] for r in runs)
        shutdown = statistics.median(r["shutdown_s"] for r in runs)
        codes = sorted({r["exit_code"] for r in runs})
        print(
            f"| {name} | {b['model_mb']:.1f} "
            f"| {statistics.median(cold):.2f} ({min(cold):.2f}-{max(cold):.2f}) | {first_ms:.0f} "
            f"| {rss:.0f} | {peak:.0f} | {shutdown:.2f} | {codes} |"
        )
        b["cold_start_vs_target"] = statistics.median(cold) / TARGETS["cold_start_s"]
        b["rss_vs_target"] = statistics.median(r["rss_mb"] for r in runs) / TARGETS["rss_mb"]
    if "venv" in report:
        v = report["venv"]
        print(
            f"\nserver-group venv: {v['install_mb']:.0f} MB (target < {TARGETS['install_mb']:.0f} MB, ratio "
            f"{v['install_mb'] / TARGETS['install_mb']:.2f}); largest: "
            + ", ".join(f"{k} {mb:.0f}" for k, mb in v["largest_mb"].items())
        )
    print(f"targets: cold start < {TARGETS['cold_start_s']} s, RSS < {TARGETS['rss_mb']:.0f} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(args.out)
    print(f"raw results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
