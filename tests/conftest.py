"""Fixtures shared by every test package.

The heavy ones (a prepared sample, a tiny trained checkpoint, tiny bundles) live in ``tests/fixtures/``
and are built once per session by the project's real code: see docs/contracts.md, section 6.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.checkpoint",
    "tests.fixtures.bundle",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TICKETS = REPO_ROOT.parent / "shared" / "data" / "tickets"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_tickets_dir() -> Path:
    """The real ticket samples beside the checkout (never copied into the repo)."""
    if not SHARED_TICKETS.is_dir():
        pytest.skip(
            f"real ticket data not found at {SHARED_TICKETS} (it lives beside the checkout in ../shared)"
        )
    return SHARED_TICKETS
