"""The command line, run as users run it (a subprocess): exit codes and one-line errors, never a traceback."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.data.cli import main
from training.data.config import PROJECT_ROOT


def run_cli(
    *args: str, cwd: Path = PROJECT_ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training.data", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})},
        check=False,
    )


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("prepare", "download", "sample", "data.paths", "data.target"):
        assert word in out


def test_prepare_on_the_sample_from_another_directory(tmp_path: Path) -> None:
    # data/sample/tickets.csv is found in the project root; the output goes relative to the cwd.
    out = tmp_path / "out"
    result = run_cli("prepare", "data.output_dir=out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "rows in: 300" in result.stdout
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    sizes = stats["sizes"]  # near-duplicate groups move val/test off exact 10% by under a group per stratum
    assert sum(sizes.values()) == 300 and 24 <= sizes["val"] <= 36 and 24 <= sizes["test"] <= 36


def test_missing_column_exits_non_zero_naming_file_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "no_body.csv"
    bad.write_text("subject,priority,language\nHello,high,en\n", encoding="utf-8")
    result = run_cli(
        "prepare", f"data.paths=[{bad.as_posix()}]", f"data.output_dir={(tmp_path / 'o').as_posix()}"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"error: {bad.as_posix()}: missing required column 'body'" in result.stderr.replace(os.sep, "/")
    assert not (tmp_path / "o" / "stats.json").exists()


def test_bad_override_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", "data.no_such_key=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bad config override") and err.count("\n") == 1


def test_cfg_prints_the_composed_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", "data.target=queue", "--cfg"]) == 0
    out = capsys.readouterr().out
    assert "target: queue" in out and "paths:" in out


def test_download_offline_fails_with_one_sentence(tmp_path: Path) -> None:
    result = run_cli(
        "download", f"download.dest={(tmp_path / 'raw').as_posix()}", env={"HF_HUB_OFFLINE": "1"}
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Tobi-Bueck/customer-support-tickets" in errors[0]


def test_sample_check_and_rewrite(tmp_path: Path) -> None:
    assert main(["sample", "--check"]) == 0
    target = tmp_path / "tickets.csv"
    assert main(["sample", "--check", "--output", str(target)]) == 1
    assert main(["sample", "--output", str(target)]) == 0
    assert target.read_bytes() == (PROJECT_ROOT / "data" / "sample" / "tickets.csv").read_bytes()


@pytest.mark.real_data
def test_prepare_documented_command_on_real_files(
    shared_tickets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "real"
    assert (
        main(
            ["prepare", f"data.paths=[{shared_tickets_dir.as_posix()}]", f"data.output_dir={out.as_posix()}"]
        )
        == 0
    )
    assert "rows in: 4614" in capsys.readouterr().out
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["rows_in"] == 1872 + 2181 + 561  # the two German-normalised files are excluded by default


def test_download_from_kaggle_without_the_client(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec("kaggle") is not None:
        pytest.skip("the kaggle client is installed here; this checks the message shown where it is not")
    assert main(["download", "download.source=kaggle", f"download.dest={(tmp_path / 'raw').as_posix()}"]) == 1
    assert capsys.readouterr().err == (
        "error: the kaggle client is not installed: run `uv pip install kaggle`, or use download.source=hf\n"
    )


def test_download_from_an_unknown_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["download", "download.source=ftp"]) == 1
    assert "unknown download.source 'ftp'" in capsys.readouterr().err
