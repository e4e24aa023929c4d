"""A real server process on a free 127.0.0.1 port, serving the tiny int8 bundle, shared by this package."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Limits the server is started with, so the load test can include its 413 cases.
SERVER_MAX_TEXT_CHARS = 8000
SERVER_MAX_BATCH_ITEMS = 16


@dataclass(frozen=True)
class LiveServer:
    url: str
    log: Path
    max_text_chars: int
    max_batch_items: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}"
            )
        try:
            if httpx.get(f"{url}/ready", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout_s:.0f} s: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def live_server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    port = free_port()
    log = tmp_path_factory.mktemp("live_server") / "server.log"
    env = {
        **os.environ,
        "MODEL_DIR": str(tiny_bundle),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MAX_TEXT_CHARS": str(SERVER_MAX_TEXT_CHARS),
        "MAX_BATCH_ITEMS": str(SERVER_MAX_BATCH_ITEMS),
        "LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server"],
            cwd=REPO_ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log)
        yield LiveServer(url, log, SERVER_MAX_TEXT_CHARS, SERVER_MAX_BATCH_ITEMS)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
