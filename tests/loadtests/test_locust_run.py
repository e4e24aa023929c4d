"""Headless locust against a real server process (tiny int8 bundle), each run in its own process.

locust monkey-patches the interpreter with gevent, so it never runs inside pytest: the tests start
``python -m locust -f loadtests/locustfile.py --headless`` and read its exit code and CSV report.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from loadtests.payloads import invalid_cases
from tests.loadtests.conftest import REPO_ROOT, LiveServer

pytestmark = pytest.mark.slow


def run_locust(
    server: LiveServer, out: Path, *extra: str, seconds: int = 5
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "locust",
        "-f", "loadtests/locustfile.py",
        "--headless", "-u", "4", "-r", "4", "-t", f"{seconds}s",
        "--host", server.url,
        "--csv", str(out / "run"), "--html", str(out / "report.html"),
        "--server-max-text-chars", str(server.max_text_chars),
        "--server-max-batch", str(server.max_batch_items),
        "--only-summary",
        *extra,
    ]  # fmt: skip
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def read_stats(out: Path) -> dict[str, dict[str, str]]:
    with (out / "run_stats.csv").open(encoding="utf-8", newline="") as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


def test_every_invalid_request_gets_its_expected_4xx(live_server: LiveServer) -> None:
    cases = invalid_cases(max_text_chars=live_server.max_text_chars, max_batch=live_server.max_batch_items)
    with httpx.Client(base_url=live_server.url, timeout=10.0) as client:
        for case in cases:
            response = client.post(case.path, content=case.body, headers={"Content-Type": case.content_type})
            assert response.status_code in case.expected, (case.name, response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/json"), case.name


def test_headless_run_passes_and_writes_csv_and_html(live_server: LiveServer, tmp_path: Path) -> None:
    result = run_locust(live_server, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "thresholds passed" in result.stderr
    stats = read_stats(tmp_path)
    total = stats["Aggregated"]
    assert int(total["Request Count"]) > 0
    assert int(total["Failure Count"]) == 0
    assert int(stats["/predict"]["Request Count"]) > 0
    assert (tmp_path / "report.html").stat().st_size > 1000
    assert (tmp_path / "run_failures.csv").is_file()


def test_spike_shape_with_a_payload_file_option(live_server: LiveServer, tmp_path: Path) -> None:
    payload = tmp_path / "tickets.csv"
    payload.write_text(
        "subject,body,language\nVPN,VPN drops every hour,en\n,Drucker druckt nicht,de\n", "utf-8"
    )
    result = run_locust(
        live_server, tmp_path, "--load-shape", "spike", "--payload-file", str(payload), seconds=4
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "load shape spike: peak 4 users" in result.stderr
    assert "payloads: 2 tickets" in result.stderr
    assert int(read_stats(tmp_path)["Aggregated"]["Failure Count"]) == 0


def test_an_impossible_threshold_makes_the_run_fail(live_server: LiveServer, tmp_path: Path) -> None:
    result = run_locust(live_server, tmp_path, "--max-p95-ms", "0.001", seconds=3)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "threshold failed: p95 latency" in result.stderr
    assert int(read_stats(tmp_path)["Aggregated"]["Request Count"]) > 0


def test_retry_storm_gets_refusals_and_no_failures(tiny_bundle: Path, tmp_path: Path) -> None:
    """The storm shape against a server with room for 3 requests: refusals (429) are counted under their
    own name and retried at once; nothing fails (no 5xx, every accepted answer is a valid prediction)."""
    from tests.server_process import ServerProcess

    env = {"INFERENCE_WORKERS": "1", "MAX_QUEUE_SIZE": "2", "MAX_BATCH_ITEMS": "2", "LOG_LEVEL": "WARNING"}
    with ServerProcess(tiny_bundle, env=env) as server:
        server.wait_ready(timeout_s=90.0)
        live = LiveServer(server.base_url, 20_000, 2)
        result = run_locust(
            live, tmp_path, "--load-shape", "storm", "-u", "24", "-r", "24", "--max-p95-ms", "60000",
            "--max-p99-ms", "60000", "--batch-max", "2", seconds=5,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "load shape storm: peak 24 users" in result.stderr
    stats = read_stats(tmp_path)
    assert int(stats["Aggregated"]["Failure Count"]) == 0
    assert int(stats["/predict"]["Request Count"]) > 0
    refused = sum(int(row["Request Count"]) for name, row in stats.items() if "[refused 429]" in name)
    assert refused > 0
