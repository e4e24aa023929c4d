"""The documentation builds strictly, its API reference matches the server app, and the configuration
reference names every config option and server environment variable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.tools import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def test_openapi_json_and_api_page_match_the_server_app() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "gen_openapi.py"), "--check"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    page = (DOCS / "api.md").read_text(encoding="utf-8")
    for path in ("/predict", "/predict/batch", "/health", "/ready", "/metrics"):
        assert f"`{path}`" in page


def test_configuration_page_names_every_option_and_env_var() -> None:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for option in sorted((REPO_ROOT / "configs").glob("*/*.yaml")):
        group = option.parent.name
        row = next((line for line in page.splitlines() if line.startswith(f"| `{group}` |")), "")
        assert f"`{option.stem}`" in row, (
            f"configs/{group}/{option.name} is missing from docs/configuration.md"
        )
    settings = (REPO_ROOT / "server" / "settings.py").read_text(encoding="utf-8")
    for name in sorted(
        set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', settings))
        - {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}
    ):
        assert f"| `{name}` |" in page, f"server env var {name} is missing from docs/configuration.md"


def test_nav_lists_every_page() -> None:
    nav = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        assert f": {page.name}" in nav, f"docs/{page.name} is not in the mkdocs nav"


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "openapi.json").is_file()
