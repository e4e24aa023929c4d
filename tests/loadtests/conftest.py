"""A real server process on a free 127.0.0.1 port, serving the tiny int8 bundle, shared by this package."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server_process import ServerProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
# Limits the server is started with, so the load test can include its 413 cases.
SERVER_MAX_TEXT_CHARS = 8000
SERVER_MAX_BATCH_ITEMS = 16


@dataclass(frozen=True)
class LiveServer:
    url: str
    max_text_chars: int
    max_batch_items: int


@pytest.fixture(scope="module")
def live_server(tiny_bundle: Path) -> Iterator[LiveServer]:
    env = {
        "MAX_TEXT_CHARS": str(SERVER_MAX_TEXT_CHARS),
        "MAX_BATCH_ITEMS": str(SERVER_MAX_BATCH_ITEMS),
        "LOG_LEVEL": "WARNING",
    }
    with ServerProcess(tiny_bundle, env=env) as server:
        server.wait_ready(timeout_s=90.0)
        yield LiveServer(server.base_url, SERVER_MAX_TEXT_CHARS, SERVER_MAX_BATCH_ITEMS)
