"""The real `python -m server` process on 127.0.0.1: HTTP, graceful SIGTERM, and start-up failures."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import REPO_ROOT, ServerProcess, free_port, server_env

pytestmark = pytest.mark.slow

TICKET = {
    "subject": "VPN",
    "text": "The VPN drops every few minutes since the last update; the whole team is blocked.",
}


def test_serves_over_http(live_server: ServerProcess) -> None:
    response = httpx.post(f"{live_server.base_url}/predict", json=TICKET, headers={"X-Request-ID": "proc-1"})
    assert response.status_code == 200
    assert response.json()["label"] in {"low", "medium", "high"}
    assert response.headers["x-request-id"] == "proc-1"
    assert httpx.get(f"{live_server.base_url}/health").json() == {"status": "ok"}
    assert "ticket_triage_http_requests_total" in httpx.get(f"{live_server.base_url}/metrics").text


def _queue_depth(base_url: str) -> float:
    for line in httpx.get(f"{base_url}/metrics", timeout=5).text.splitlines():
        if line.startswith("ticket_triage_queue_depth_items "):
            return float(line.split()[1])
    return 0.0


def test_sigterm_finishes_in_flight_requests_and_exits_0(bundle_dir: Path) -> None:
    # one worker, no batching: 8 requests x 256 items queue up long enough to be in flight at SIGTERM
    env = {
        "INFERENCE_WORKERS": "1",
        "MAX_BATCH_SIZE": "1",
        "MAX_BATCH_ITEMS": "256",
        "MAX_QUEUE_SIZE": "4000",
        "SHUTDOWN_TIMEOUT_S": "30",  # the drain must not race the shutdown timeout on a loaded CI machine
        "REQUEST_TIMEOUT_S": "0",  # nor the request deadline (this test is about draining)
    }
    with ServerProcess(bundle_dir, env=env) as server:
        server.wait_ready()
        items = [
            {"text": f"ticket {i}: " + "the printer on floor two is broken again " * 8} for i in range(256)
        ]
        results: list[tuple[int, float, int]] = []
        errors: list[BaseException] = []

        def call() -> None:
            try:
                r = httpx.post(f"{server.base_url}/predict/batch", json={"items": items}, timeout=60)
                results.append((r.status_code, time.monotonic(), len(r.json()["predictions"])))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        # SIGTERM only once all 8 requests were read (their items queued): a connection the server has not yet
        # accepted is not in flight, and closing the listener resets it, by design
        deadline = time.monotonic() + 30
        while _queue_depth(server.base_url) < 7 * len(items) and time.monotonic() < deadline:
            time.sleep(0.002)
        sigterm_at = time.monotonic()
        server.terminate()
        for t in threads:
            t.join(60)
        assert server.wait(30) == 0, server.output()
    assert not errors, errors
    assert [(status, n) for status, _, n in results] == [(200, len(items))] * 8
    assert any(done > sigterm_at for _, done, _ in results), "no request was in flight at SIGTERM"
    output = server.output()
    assert "Shutting down" in output and "shut down cleanly" in output
    assert "Traceback" not in output


def _run_server(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"PORT": "http"}, "server: invalid configuration: PORT='http' is invalid: expected an integer"),
        ({"MODEL_DIR": ""}, "server: invalid configuration: MODEL_DIR is not set"),
        ({"MAX_BATCH_SIZE": "-1"}, "MAX_BATCH_SIZE=-1 is out of range"),
        ({"MODEL_DIR": "/nonexistent/bundle"}, "does not exist or is not a directory; set MODEL_DIR"),
    ],
)
def test_invalid_config_exits_2_with_one_clear_line(
    bundle_dir: Path, overrides: dict[str, str], fragment: str
) -> None:
    env = server_env(bundle_dir, free_port())
    env.update(overrides)
    result = _run_server(env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr  # one line
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_altered_bundle_exits_2_naming_the_file(bundle_copy: Path) -> None:
    tokenizer = bundle_copy / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace("[UNK]", "[UNX]", 1))  # same length, new checksum
    result = _run_server(server_env(bundle_copy, free_port()))
    assert result.returncode == 2
    assert (
        "tokenizer.json checksum mismatch" in result.stderr
        and "re-run `python -m export.onnx`" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_unloadable_model_exits_1(bundle_copy: Path) -> None:
    import hashlib

    model = bundle_copy / "model.onnx"
    model.write_bytes(b"this is not an ONNX model")
    manifest = json.loads(
        (bundle_copy / "manifest.json").read_text()
    )  # checksums match: export wrote garbage
    manifest["files"]["model.onnx"] = {"sha256": hashlib.sha256(model.read_bytes()).hexdigest(), "bytes": 25}
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    result = _run_server(server_env(bundle_copy, free_port()))
    assert result.returncode == 1
    assert "server: the model could not be loaded: ONNX Runtime cannot load" in result.stderr
    assert "Traceback" not in result.stderr


def test_documented_uvicorn_factory_command(bundle_dir: Path) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "server.app:create_app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with ServerProcess(bundle_dir, command=command) as server:
        server.base_url = f"http://127.0.0.1:{port}"
        server.wait_ready()
        assert httpx.post(f"{server.base_url}/predict", json=TICKET).status_code == 200
        server.terminate()
        server.wait(30)
    assert "Application shutdown complete" in server.output()


def _metric_value(base_url: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{want}}} " if labels else f"{name} "
    for line in httpx.get(f"{base_url}/metrics", timeout=5).text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def test_dead_batcher_turns_unready_and_exits_non_zero(bundle_dir: Path) -> None:
    with ServerProcess(bundle_dir, env={"SERVER_INJECT_FAULT": "collector"}) as server:
        server.wait_ready()
        response = httpx.post(f"{server.base_url}/predict", json=TICKET, timeout=30)
        assert response.status_code == 503, response.text
        assert "the micro-batcher died" in response.json()["detail"]
        code = server.wait(30)  # it exits by itself: the platform restarts it
    assert code == 1, server.output()
    output = server.output()
    assert "the micro-batcher died" in output
    assert "server: the model could not be served" in output


_BACKLOG_ITEMS = [
    {"text": f"ticket {i}: " + "the printer on floor two is broken again " * 8} for i in range(256)
]


def _start_backlog(base_url: str, min_queued: int, clients: int = 8) -> list[threading.Thread]:
    """``clients`` threads each POST the backlog items; returns once ``min_queued`` items wait (or 30 s)."""

    def call() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{base_url}/predict/batch", json={"items": _BACKLOG_ITEMS}, timeout=60)

    threads = [threading.Thread(target=call) for _ in range(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while _queue_depth(base_url) < min_queued and time.monotonic() < deadline:
        time.sleep(0.002)
    return threads


def test_disconnected_clients_items_are_dropped_before_inference(bundle_dir: Path) -> None:
    env = {
        "INFERENCE_WORKERS": "1",
        "MAX_BATCH_ITEMS": "256",
        "MAX_QUEUE_SIZE": "4000",
        "REQUEST_TIMEOUT_S": "0",
    }
    with ServerProcess(bundle_dir, env=env) as server:
        server.wait_ready()
        items = _BACKLOG_ITEMS
        busy = _start_backlog(server.base_url, min_queued=6 * len(items))  # a backlog for the only worker
        with pytest.raises(httpx.ReadTimeout):  # this client gives up while its items wait
            httpx.post(f"{server.base_url}/predict/batch", json={"items": items[:5]}, timeout=0.3)
        for t in busy:
            t.join(60)
        deadline = time.monotonic() + 10
        dropped = 0.0
        while time.monotonic() < deadline and dropped < 5:
            dropped = _metric_value(
                server.base_url, "ticket_triage_rejected_items_total", reason="disconnected"
            )
            time.sleep(0.05)
        assert dropped == 5
        ran = _metric_value(server.base_url, "ticket_triage_batch_size_items_sum")
        assert ran == 8 * len(items)  # the gone client's 5 items never reached the model


def test_shutdown_timeout_0_stops_at_once_under_load(bundle_dir: Path) -> None:
    env = {
        "INFERENCE_WORKERS": "1",
        "MAX_BATCH_ITEMS": "256",
        "MAX_QUEUE_SIZE": "4000",
        "SHUTDOWN_TIMEOUT_S": "0",
    }
    with ServerProcess(bundle_dir, env=env) as server:
        server.wait_ready()
        threads = _start_backlog(server.base_url, min_queued=7 * len(_BACKLOG_ITEMS))
        stopped_at = time.monotonic()
        server.terminate()
        code = server.wait(30)
        took = time.monotonic() - stopped_at
        for t in threads:
            t.join(60)
    assert code == 0, server.output()
    assert took < 5.0, f"SHUTDOWN_TIMEOUT_S=0 took {took:.1f} s"  # one batch at most, never the backlog
