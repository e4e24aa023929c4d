"""Fixtures for the server tests: the tiny bundles, app clients, and a real server process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from server.app import create_app
from server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def bundle_dir(tiny_bundle: Path) -> Path:
    """The int8 tiny bundle written by the real export code (tests/fixtures/bundle.py); never modify it."""
    return Path(tiny_bundle)


@pytest.fixture(scope="session")
def bundle_dir_fp32(tiny_bundle_fp32: Path) -> Path:
    """The fp32 tiny bundle written by the real export code. Shared: never modify."""
    return Path(tiny_bundle_fp32)


@pytest.fixture
def bundle_copy(bundle_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the int8 bundle that a test may damage."""
    return Path(shutil.copytree(bundle_dir, tmp_path / "bundle"))


def make_settings(model_dir: Path, **overrides: Any) -> Settings:
    settings = replace(Settings(model_dir=model_dir), **overrides)
    settings.check()
    return settings


def wait_ready(client: TestClient[Litestar], timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get("/ready")
        if response.status_code == 200:
            return
        assert response.status_code == 503, response.text
        assert response.json()["status"] == "loading", response.text
        time.sleep(0.02)
    raise AssertionError(f"the app did not become ready within {timeout_s} s")


@contextlib.contextmanager
def ready_client(settings: Settings, **app_kwargs: Any) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(settings, **app_kwargs), raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client


@pytest.fixture(scope="module")
def client(bundle_dir: Path) -> Iterator[TestClient[Litestar]]:
    """One ready app (default settings, int8 tiny bundle) shared by a test module."""
    with ready_client(make_settings(bundle_dir)) as c:
        yield c


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(model_dir: Path | str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MODEL_DIR", "PORT", "HOST"}}
    env.update({"MODEL_DIR": str(model_dir), "HOST": "127.0.0.1", "PORT": str(port), "OMP_NUM_THREADS": "1"})
    env.update(extra)
    return env


class ServerProcess:
    """`python -m server` (or another command) on a free 127.0.0.1 port; stopped by its own pid."""

    def __init__(
        self, model_dir: Path, command: list[str] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.command = command or [sys.executable, "-m", "server"]
        self.env = server_env(model_dir, self.port, **(env or {}))
        self.proc: subprocess.Popen[bytes] | None = None
        # a file, not a pipe: a chatty server must never block on a full pipe nobody reads
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._final_output = ""

    def start(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.command, cwd=REPO_ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Seconds from now until GET /ready answered 200."""
        assert self.proc is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/ready", timeout=1.0).status_code == 200:
                    return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout_s} s")

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout_s)

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr (so far, or in all once stopped)."""
        if self._log.closed:
            return self._final_output
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._final_output = self.output()
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="module")
def live_server(bundle_dir: Path) -> Iterator[ServerProcess]:
    """A real `python -m server` process, ready, shared by a test module."""
    with ServerProcess(bundle_dir) as server:
        server.wait_ready()
        yield server
