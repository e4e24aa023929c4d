"""Every command the README shows is run by a test or by .ci/run, or is listed here with the reason it cannot
be (network, or hours of CPU). Adding a command to the README without saying what runs it fails this test."""

# ruff: noqa: E501  (a table: one command per line reads better than wrapped tuples)

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.tools import REPO_ROOT

# command (as the README writes it, up to the first "<" or line end) -> (file that runs it, text that shows it does)
RUN_BY: dict[str, tuple[str, str]] = {
    "uv sync --frozen && uv run pytest": (".ci/run", "uv run pytest"),
    "uv run python scripts/quickstart.py": ("tests/ops/test_quickstart.py", "QUICKSTART"),
    "uv run python -m training.data prepare": ("tests/training/data/test_data_cli.py", "prepare"),
    "uv run python -m training.data prepare data=tickets": (
        "tests/training/data/test_data_cli.py",
        "real_data",
    ),
    "uv run python -m training.data prepare data=tickets_de": (
        "tests/training/data/test_train_files.py",
        "data=tickets_de",
    ),
    "uv run python -m training.data prepare data=crossfile": (
        "tests/training/data/test_split_groups.py",
        "data=crossfile",
    ),
    "uv run python -m benchmarks.served_quality --bundle bundles/": (
        "tests/benchmarks/test_served_quality.py",
        '"--bundle"',
    ),
    "uv run python -m training.run": ("tests/training/test_default_run.py", "training.run"),
    "uv run python -m training.run experiment=smoke": (
        "tests/training/test_resume.py",
        "experiment=smoke",
    ),
    "uv run torchrun --nproc_per_node 2 -m training.run experiment=smoke": (
        "tests/training/helpers.py",
        "torchrun",
    ),
    "uv run python -m training.evaluate": ("tests/ops/test_readme_commands.py", '"training.evaluate"'),
    "uv run python -m export.onnx --quantize": ("tests/export/test_cli.py", "--quantize"),
    "MODEL_DIR=bundles/": ("tests/server_process.py", '"-m", "server"'),
    "curl -s localhost:8080/predict": ("tests/server/test_api.py", "/predict"),
    "uv run locust -f loadtests/locustfile.py --headless": (
        "tests/loadtests/test_locust_run.py",
        "--headless",
    ),
    "uv run mkdocs build --strict": ("tests/ops/test_docs.py", '"--strict"'),
    "uv run dvc repro": ("tests/ops/test_dvc.py", '"repro"'),
    "uv run dvc exp run -S trainer.lr=3e-5": ("tests/ops/test_dvc.py", '"exp", "run", "-S", "trainer.lr='),
    "uv run ruff check . && uv run ruff format --check . && uv run mypy training export server monitoring quality": (
        ".ci/run",
        "uv run mypy training export server monitoring quality",
    ),
    'uv run pytest -m "not slow"': (".ci/run", "uv run pytest"),
    "python -m monitoring.drift --log predictions.jsonl --bundle": (
        "tests/monitoring/test_with_bundle.py",
        '"--bundle"',
    ),
    "python -m training.data prepare": ("tests/training/data/test_data_cli.py", "prepare"),
    "python -m training.run experiment=best": ("tests/ops/test_cloud_scripts.py", "experiment=best"),
    "python -m training.evaluate": ("tests/ops/test_readme_commands.py", '"training.evaluate"'),
    "python -m export.onnx --quantize": ("tests/export/test_cli.py", "--quantize"),
    "MODEL_DIR=": ("tests/server_process.py", '"-m", "server"'),
    "locust -f loadtests/locustfile.py": ("tests/loadtests/test_locust_run.py", "locustfile"),
}
# Shown but not run by the suite, and why.
NOT_RUN = {
    "uv run python -m training.data download": "needs the Hugging Face hub (its offline failure is tested)",
    "uv run python -m training.run experiment=quick data=tickets": "20-30 min of 2 CPU cores (docs/training.md)",
    "uv run pre-commit install": "installs a git hook into the developer's clone; the hooks' tools run in .ci/run",
    "pip install uv": "the one prerequisite",
}


def readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    for span in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
        if re.match(r"(uv run |python -m |MODEL_DIR=|locust |curl |pip install )", span):
            commands.append(span)
    return commands


def _known(command: str) -> str | None:
    for prefix in sorted([*RUN_BY, *NOT_RUN], key=len, reverse=True):
        if command == prefix or command.startswith(prefix.split("<")[0]):
            return prefix
    return None


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_is_run_somewhere(command: str) -> None:
    prefix = _known(command)
    assert prefix is not None, (
        f"README command {command!r}: add the test that runs it to RUN_BY (or to NOT_RUN)"
    )
    if prefix in RUN_BY:
        path, evidence = RUN_BY[prefix]
        assert evidence in (REPO_ROOT / path).read_text(encoding="utf-8"), f"{path} does not run {command!r}"


@pytest.mark.slow
def test_evaluate_command_on_a_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """`python -m training.evaluate <checkpoint>`, the README's evaluate stage, as a real subprocess."""
    result = subprocess.run(
        [sys.executable, "-m", "training.evaluate", str(tiny_checkpoint), "--output-dir", str(tmp_path / "metrics")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "metrics" / "report.json").is_file()
    assert "macro-F1" in result.stdout + result.stderr
