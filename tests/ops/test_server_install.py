"""The serving image's install step, reproduced in a throwaway virtualenv (no Docker engine here): the
`server` group of uv.lock alone must run the server, with no torch or transformers, within the size budget."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ops.tools import REPO_ROOT
from tests.server_process import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX virtualenv layout and signals"),
]

# issue budget for the server install (the image adds the python:3.11-slim base, ~125 MB, and the bundle)
MAX_INSTALL_MB = 350


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def test_server_group_install_is_small_and_serves_a_bundle(tiny_bundle: Path, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    venv = tmp_path / "venv"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_COMPILE_BYTECODE": "1",
        "UV_LINK_MODE": "copy",
    }
    env.pop("VIRTUAL_ENV", None)
    # exactly the command of docker/server.Dockerfile
    sync = subprocess.run(
        [uv, "sync", "--frozen", "--no-default-groups", "--group", "server", "--no-install-project", "-q"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    python = venv / "bin" / "python"
    app = tmp_path / "app"
    for package in ("bundle_contract", "server"):  # what docker/server.Dockerfile copies
        shutil.copytree(REPO_ROOT / package, app / package, ignore=shutil.ignore_patterns("__pycache__"))

    size = _size_mb(venv)
    assert size < MAX_INSTALL_MB, f"server install is {size:.0f} MB (budget {MAX_INSTALL_MB} MB)"
    absent = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print([n for n in ('torch', 'transformers', "
         "'training', 'export') if u.find_spec(n)])"],
        cwd=app, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert absent.stdout.strip() == "[]"

    port = free_port()
    server_env = {
        "PATH": os.environ["PATH"],
        "MODEL_DIR": str(tiny_bundle),
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    process = subprocess.Popen(
        [str(python), "-m", "server"],
        cwd=app,
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, "the server exited before /ready"
                assert time.monotonic() < deadline, "/ready did not answer 200 within 60 s"
                time.sleep(0.2)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output.decode(errors="replace")[-2000:]
