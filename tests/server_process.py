"""A real `python -m server` process on a free 127.0.0.1 port, for every test package that needs one."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 120.0  # generous: a loaded shared machine can take a minute to import


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
