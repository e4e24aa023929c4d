"""Fixtures for the server tests: the tiny bundles, app clients, and a real server process."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from server.app import create_app
from server.settings import Settings
from tests.server_process import READY_TIMEOUT_S, ServerProcess, free_port, server_env

REPO_ROOT = Path(__file__).resolve().parents[2]

__all__ = ["READY_TIMEOUT_S", "REPO_ROOT", "ServerProcess", "free_port", "server_env"]


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


@pytest.fixture(scope="module")
def live_server(bundle_dir: Path) -> Iterator[ServerProcess]:
    """A real `python -m server` process, ready, shared by a test module."""
    with ServerProcess(bundle_dir) as server:
        server.wait_ready()
        yield server
