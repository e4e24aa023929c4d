"""Locate the linters the ops tests run: on PATH, or next to this interpreter (the dev group's wheels put
hadolint, shellcheck and actionlint into the virtualenv's bin directory)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else None


def require_tool(name: str, install_hint: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} not installed ({install_hint})")
    return path


def repo_files(*suffixes: str) -> list[Path]:
    """Files of the repository (tracked or new, not ignored) whose name ends with one of ``suffixes``."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO_ROOT, capture_output=True, check=True, timeout=60,
        ).stdout.decode()  # fmt: skip
        paths = [REPO_ROOT / p for p in listed.split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        skip = {".git", ".venv", "outputs", "multirun", "wandb", "site", "node_modules", "bundles", "data"}
        paths = [p for p in REPO_ROOT.rglob("*") if not skip & set(p.relative_to(REPO_ROOT).parts)]
    return sorted(p for p in paths if p.is_file() and p.name.endswith(suffixes))
