"""docker/train-entrypoint.sh run as a script with stub ``dvc`` and a stub training/export interpreter.

The stub interpreter (``PYTHON``) plays ``python -m training.run`` and ``python -m export.onnx`` (it records
its arguments and writes the files those commands write) and hands everything else, i.e. docker/gcs_sync.py,
to the real interpreter, so pushing and pulling outputs really happens (to a local directory standing in for gs://).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ops.tools import REPO_ROOT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="bash entrypoint")

ENTRYPOINT = REPO_ROOT / "docker" / "train-entrypoint.sh"

STUB_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
if [[ "$1" == -m && ( "$2" == training.run || "$2" == training.launch_vertex ) ]]; then
    run_dir=""
    for arg in "$@"; do [[ "$arg" == hydra.run.dir=* ]] && run_dir="${arg#hydra.run.dir=}"; done
    mkdir -p "$run_dir/checkpoints/best" "$run_dir/checkpoints/last"
    echo '{"labels": ["low", "medium", "high"]}' > "$run_dir/checkpoints/best/labels.json"
    echo state > "$run_dir/checkpoints/last/state.pt"
    if [[ -n "${TRAIN_SLEEP:-}" ]]; then
        sleep "$TRAIN_SLEEP" &
        trap 'kill $!; echo terminated > "$run_dir/terminated"; exit 143' TERM
        touch "$run_dir/sleeping"
        wait $!
    fi
    exit "${TRAIN_EXIT:-0}"
fi
if [[ "$1" == -m && "$2" == export.onnx ]]; then
    out=""
    while [[ $# -gt 0 ]]; do [[ "$1" == --output ]] && out="$2"; shift; done
    mkdir -p "$out" && echo '{"model_version": "stub"}' > "$out/manifest.json"
    exit 0
fi
exec "$REAL_PYTHON" "$@"
"""

STUB_DVC = """#!/usr/bin/env bash
echo "dvc $*" >> "$CALLS"
if [[ "$1" == pull ]]; then exit "${DVC_EXIT:-0}"; fi
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Path]:
    """A working directory like the image's /app (no .git), stubs on PATH, and a fake bucket."""
    work = tmp_path / "app"
    (work / "docker").mkdir(parents=True)
    for name in ("train-entrypoint.sh", "gcs_sync.py", "fetch_secret.py"):
        (work / "docker" / name).symlink_to(REPO_ROOT / "docker" / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("python-stub", STUB_PYTHON), ("dvc", STUB_DVC)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return {"work": work, "bin": bin_dir, "bucket": tmp_path / "bucket", "calls": tmp_path / "calls.log"}


def entrypoint_env(sandbox: dict[str, Path], **extra: str) -> dict[str, str]:
    env = {
        "PATH": f"{sandbox['bin']}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(sandbox["work"]),
        "PYTHON": str(sandbox["bin"] / "python-stub"),
        "REAL_PYTHON": sys.executable,
        "PYTHONPATH": str(REPO_ROOT),
        "CALLS": str(sandbox["calls"]),
        "RUN_NAME": "run-1",
        "OUTPUT_GCS_URI": str(sandbox["bucket"]),
    }
    env.update(extra)
    return env


def run_entrypoint(
    sandbox: dict[str, Path], *args: str, **extra: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    result = subprocess.run(
        ["bash", str(ENTRYPOINT), *args],
        cwd=sandbox["work"], env=entrypoint_env(sandbox, **extra),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    calls = sandbox["calls"].read_text().splitlines() if sandbox["calls"].exists() else []
    return result, calls


def test_pulls_data_trains_exports_and_pushes(sandbox: dict[str, Path]) -> None:
    result, calls = run_entrypoint(sandbox, "experiment=best", "trainer.max_epochs=1")
    assert result.returncode == 0, result.stderr
    run_dir = "outputs/train/run-1"
    assert calls[0] == "dvc config --local core.no_scm true"  # no .git in the image
    assert calls[1] == "dvc pull"
    assert any(c.startswith("docker/gcs_sync.py pull") for c in calls)
    train = next(c for c in calls if c.startswith("-m training.run"))
    assert train == f"-m training.run hydra.run.dir={run_dir} experiment=best trainer.max_epochs=1"
    export = next(c for c in calls if c.startswith("-m export.onnx"))
    assert f"--checkpoint {run_dir}/checkpoints/best --quantize --output {run_dir}/bundle" in export
    pushed = sandbox["bucket"] / "run-1"
    assert (pushed / "checkpoints" / "best" / "labels.json").is_file()
    assert (pushed / "bundle" / "manifest.json").is_file()
    assert "no earlier outputs" in result.stderr


def test_failed_training_keeps_its_checkpoints_and_its_exit_status(sandbox: dict[str, Path]) -> None:
    result, calls = run_entrypoint(sandbox, "experiment=best", TRAIN_EXIT="7")
    assert result.returncode == 7
    assert not any(c.startswith("-m export.onnx") for c in calls)
    assert (sandbox["bucket"] / "run-1" / "checkpoints" / "last" / "state.pt").is_file()


def test_restarted_job_resumes_from_the_pushed_run(sandbox: dict[str, Path]) -> None:
    last = sandbox["bucket"] / "run-1" / "checkpoints" / "last"
    last.mkdir(parents=True)
    (last / "state.pt").write_text("state from the first attempt")
    result, calls = run_entrypoint(sandbox, "experiment=best", DVC_PULL="0")
    assert result.returncode == 0, result.stderr
    train = next(c for c in calls if c.startswith("-m training.run"))
    assert train.endswith("experiment=best trainer.resume=true")
    assert "resuming the interrupted run" in result.stderr
    assert not any(c.startswith("dvc") for c in calls)


def test_sigterm_is_forwarded_and_outputs_are_pushed(sandbox: dict[str, Path]) -> None:
    process = subprocess.Popen(
        ["bash", str(ENTRYPOINT), "experiment=best"],
        cwd=sandbox["work"], env=entrypoint_env(sandbox, DVC_PULL="0", TRAIN_SLEEP="60"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    marker = sandbox["work"] / "outputs" / "train" / "run-1" / "sleeping"  # the step's TERM trap is set
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the stub training step did not start"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "forwarding it to the running step" in stderr
    assert (sandbox["bucket"] / "run-1" / "terminated").is_file()  # the step got SIGTERM, then the push ran


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (("hydra.run.dir=/tmp/x",), {}, "set RUN_DIR or RUN_NAME instead of hydra.run.dir="),
        ((), {"DVC_PULL": "maybe"}, "DVC_PULL must be 1 or 0"),
        ((), {"DVC_EXIT": "1"}, "dvc pull failed"),
    ],
)
def test_bad_input_fails_with_a_clear_message(
    sandbox: dict[str, Path], args: tuple[str, ...], extra: dict[str, str], message: str
) -> None:
    result, calls = run_entrypoint(sandbox, *args, **extra)
    assert result.returncode != 0
    assert message in result.stderr
    assert not any(c.startswith("-m training.run") for c in calls)


def test_vertex_replica_other_than_the_primary_trains_but_neither_exports_nor_pushes(
    sandbox: dict[str, Path],
) -> None:
    spec = (
        '{"cluster": {"workerpool0": ["primary:2222"], "workerpool1": ["w1:2222", "w2:2222"]},'
        ' "task": {"type": "workerpool1", "index": 1}}'
    )
    result, calls = run_entrypoint(sandbox, "experiment=best", DVC_PULL="0", CLUSTER_SPEC=spec)
    assert result.returncode == 0, result.stderr
    train = next(c for c in calls if "training." in c and c.startswith("-m "))
    assert train.startswith("-m training.launch_vertex hydra.run.dir=outputs/train/run-1 experiment=best")
    assert "node 2: done" in result.stderr
    assert not any(c.startswith("-m export.onnx") for c in calls)
    assert not any("gcs_sync.py push" in c for c in calls)


def test_run_root_and_a_local_resume(sandbox: dict[str, Path]) -> None:
    last = sandbox["work"] / "runs" / "run-1" / "checkpoints" / "last"
    last.mkdir(parents=True)
    (last / "state.pt").write_text("state")
    result, calls = run_entrypoint(sandbox, DVC_PULL="0", OUTPUT_GCS_URI="", RUN_ROOT="runs")
    assert result.returncode == 0, result.stderr
    train = next(c for c in calls if c.startswith("-m training.run"))
    assert train == "-m training.run hydra.run.dir=runs/run-1 trainer.resume=true"


def test_without_a_bucket_outputs_stay_local(sandbox: dict[str, Path]) -> None:
    result, calls = run_entrypoint(sandbox, DVC_PULL="0", OUTPUT_GCS_URI="")
    assert result.returncode == 0, result.stderr
    assert not any("gcs_sync.py" in c for c in calls)
    assert (sandbox["work"] / "outputs" / "train" / "run-1" / "bundle" / "manifest.json").is_file()
    assert not sandbox["bucket"].exists()


def test_gcs_sync_round_trip_and_empty_source(tmp_path: Path) -> None:
    source = tmp_path / "run"
    (source / "checkpoints" / "best").mkdir(parents=True)
    (source / "checkpoints" / "best" / "model.bin").write_bytes(b"\x00\x01")
    (source / "log.txt").write_text("hello")
    sync = [sys.executable, str(REPO_ROOT / "docker" / "gcs_sync.py")]
    assert subprocess.run([*sync, "push", str(source), str(tmp_path / "remote")], check=False).returncode == 0
    back = tmp_path / "back"
    assert subprocess.run([*sync, "pull", str(tmp_path / "remote"), str(back)], check=False).returncode == 0
    assert (back / "checkpoints" / "best" / "model.bin").read_bytes() == b"\x00\x01"
    assert (back / "log.txt").read_text() == "hello"
    empty = subprocess.run([*sync, "pull", str(tmp_path / "nothing"), str(back)], check=False)
    assert empty.returncode == 3
    usage = subprocess.run([*sync, "copy"], capture_output=True, text=True, check=False)
    assert usage.returncode == 64
    assert "usage" in usage.stderr


def test_fetch_secret_rejects_a_malformed_name() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "docker" / "fetch_secret.py"), "wandb-api-key"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "is not a secret version name" in result.stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_real_training_and_export_through_the_entrypoint(tmp_path: Path) -> None:
    """No stubs: the entrypoint drives the real `training.run` (smoke experiment) and `export.onnx`, and
    pushes the run to a local directory standing in for the bucket, as the training image does on Vertex."""
    env = {
        **os.environ,
        "DVC_PULL": "0",
        "RUN_NAME": "smoke-run",
        "RUN_ROOT": str(tmp_path / "runs"),
        "OUTPUT_GCS_URI": str(tmp_path / "bucket"),
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
        # the tiny model's int8 checks are reported, not enforced (see tests/fixtures/bundle.py)
        "EXPORT_ARGS": "--allow-below-baseline",
    }
    result = subprocess.run(
        ["bash", str(ENTRYPOINT), "experiment=smoke", f"data.output_dir={tmp_path / 'processed'}"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    pushed = tmp_path / "bucket" / "smoke-run"
    assert (pushed / "checkpoints" / "best" / "labels.json").is_file()
    # transformers.Trainer's resume state: checkpoint-<step>/ marked complete by run_config.json
    assert list((pushed / "checkpoints" / "last").glob("checkpoint-*/run_config.json"))
    manifest = json.loads((pushed / "bundle" / "manifest.json").read_text())
    assert manifest["quantization"] is not None
    assert (pushed / ".hydra" / "config.yaml").is_file()
