"""kill -9 mid-epoch, then ``trainer.resume=true``: the run refuses a changed config, continues the same W&B
run, and ends with the weights of an uninterrupted run. DDP: torchrun on one node, and two "nodes" that each
see a different working directory (no shared data dir)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from .helpers import REPO_ROOT, free_port, run_cmd, run_training, training_env, wandb_history, wandb_records

pytestmark = pytest.mark.slow

SMOKE = ["experiment=smoke", "evaluate=false", "logger=wandb"]  # W&B offline: no key in training_env()


def _complete_steps(run_dir: Path) -> list[int]:
    last = run_dir / "checkpoints" / "last"
    return sorted(
        int(p.name.split("-")[1]) for p in last.glob("checkpoint-*") if (p / "run_config.json").exists()
    )


def _kill_mid_second_epoch(run_dir: Path, steps_per_epoch: int, timeout: float = 300) -> int:
    proc = subprocess.Popen(
        run_cmd(SMOKE, run_dir),
        cwd=REPO_ROOT,
        env=training_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while not any(s > steps_per_epoch for s in _complete_steps(run_dir)):
            assert proc.poll() is None, "training ended before a checkpoint in its second epoch"
            assert time.monotonic() < deadline, "no checkpoint in the second epoch within the timeout"
            time.sleep(0.01)
    finally:
        proc.kill()  # SIGKILL: no cleanup, no final save
        proc.wait(timeout=30)
    return _complete_steps(run_dir)[-1]


def test_resume_after_kill_mid_epoch_matches_an_uninterrupted_run(tmp_path: Path, tiny_run_dir: Path) -> None:
    uninterrupted = json.loads(
        (tiny_run_dir / "metrics" / "train_summary.json").read_text()
    )  # same smoke config
    per_epoch, total = uninterrupted["steps_per_epoch"], uninterrupted["global_step"]
    run_dir = tmp_path / "run"  # builds its own tiny vocabulary: the same as the reference run's
    killed_at = _kill_mid_second_epoch(run_dir, per_epoch)
    assert per_epoch < killed_at < 2 * per_epoch, f"killed at step {killed_at}, not mid-epoch 2"
    [killed_run] = (run_dir / "wandb").glob("offline-run-*")

    refused = run_training([*SMOKE, "trainer.resume=true", "trainer.lr=1e-2"], run_dir)
    assert refused.returncode == 2
    output = refused.stdout + refused.stderr
    assert "cannot resume" in output and "trainer.lr (0.005 -> 0.01)" in output and "Traceback" not in output

    result = run_training([*SMOKE, "trainer.resume=true"], run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        f"resuming from {run_dir / 'checkpoints' / 'last' / f'checkpoint-{killed_at}'}"
        in (run_dir / "run.log").read_text()
    )
    resumed = json.loads((run_dir / "metrics" / "train_summary.json").read_text())
    assert resumed["global_step"] == total and resumed["epochs_completed"] == 4
    assert resumed["best_val_macro_f1"] == pytest.approx(uninterrupted["best_val_macro_f1"], abs=1e-9)
    final = load_file(run_dir / "checkpoints" / "last" / f"checkpoint-{total}" / "model.safetensors")
    reference = load_file(tiny_run_dir / "checkpoints" / "last" / f"checkpoint-{total}" / "model.safetensors")
    assert final.keys() == reference.keys()
    for name, tensor in reference.items():
        torch.testing.assert_close(final[name], tensor, rtol=1e-5, atol=1e-6, msg=f"{name} differs")

    # the resumed process continued the killed one's W&B run: same id, and it recorded the rest of the run
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and {r.name.rsplit("-", 1)[1] for r in runs} == {killed_run.name.rsplit("-", 1)[1]}
    [resumed_run] = [r for r in runs if r != killed_run]
    records = wandb_records(next(resumed_run.glob("run-*.wandb")))
    history = wandb_history(records)
    f1 = [h["eval/macro_f1"] for h in history if "eval/macro_f1" in h]
    assert len(f1) == 4 - killed_at // per_epoch and max(f1) <= resumed["best_val_macro_f1"] + 1e-9
    assert any("train/loss" in h and "train/learning_rate" in h for h in history)
    artifacts = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    [model] = [a for a in artifacts if a.type == "model"]
    assert model.name == "tiny-priority" and "best" in model.aliases
    assert {"model.safetensors", "tokenizer.json", "labels.json", "recipe.json"} <= {
        e.path for e in model.manifest.contents
    }
    summary = {
        item.key: json.loads(item.value_json)
        for r in records
        if r.WhichOneof("record_type") == "summary"
        for item in r.summary.update
    }
    assert summary["best_val_macro_f1"] == pytest.approx(resumed["best_val_macro_f1"])


def test_resume_true_in_an_empty_run_dir_starts_fresh(tmp_path: Path) -> None:
    result = run_training(
        ["experiment=smoke", "evaluate=false", "trainer.resume=true", "trainer.max_steps=3"], tmp_path / "r"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "no complete checkpoint was found: starting from scratch" in (tmp_path / "r" / "run.log").read_text()
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun's gloo rendezvous is not supported on Windows")
def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    """torchrun --nproc_per_node 2 with gloo: completes; one checkpoint, one run dir, one log."""
    run_dir = tmp_path / "run"
    cwd_before = set(REPO_ROOT.iterdir())
    args = run_cmd(["experiment=smoke", "evaluate=false", "trainer.max_epochs=2"], run_dir)[2:]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        *args,
    ]
    result = subprocess.run(
        cmd, cwd=REPO_ROOT, env=training_env(), capture_output=True, text=True, timeout=420, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best", "last"}  # no temp dirs left
    assert (run_dir / "checkpoints" / "best" / "labels.json").is_file()
    summary = json.loads((run_dir / "metrics" / "train_summary.json").read_text())
    rows = json.loads((run_dir / "processed" / "stats.json").read_text())["sizes"]["train"]
    assert summary["world_size"] == 2
    assert summary["steps_per_epoch"] == math.ceil(math.ceil(rows / 8) / 2), "each rank: half the batches"
    assert summary["global_step"] == 2 * summary["steps_per_epoch"]
    assert {
        p.name
        for p in (run_dir / "checkpoints" / "last" / f"checkpoint-{summary['global_step']}").glob(
            "rng_state_*"
        )
    } == {
        "rng_state_0.pth",
        "rng_state_1.pth",
    }, "every rank saves its own RNG state"
    log_text = (run_dir / "run.log").read_text()
    assert "DDP: rank 0/2" in log_text and "backend gloo" in log_text
    assert set(REPO_ROOT.iterdir()) == cwd_before, "rank 1 wrote into the working directory"


@pytest.mark.skipif(sys.platform == "win32", reason="gloo rendezvous is not supported on Windows")
def test_two_nodes_with_different_working_directories(tmp_path: Path) -> None:
    """Two single-process "nodes" (LOCAL_RANK 0 each) in different working dirs, sharing only the run dir:
    each prepares the data into its own relative data/processed/sample, identically, and the run trains."""
    run_dir, port = tmp_path / "shared-run", free_port()
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    procs = []
    for rank, node in enumerate(nodes):
        node.mkdir()
        env = training_env(
            RANK=str(rank),
            LOCAL_RANK="0",
            WORLD_SIZE="2",
            LOCAL_WORLD_SIZE="1",
            GROUP_RANK=str(rank),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        )
        cmd = [
            sys.executable,
            "-m",
            "training.run",
            "experiment=smoke",
            "evaluate=false",
            "trainer.max_epochs=1",
        ]
        cmd.append(f"hydra.run.dir={run_dir.as_posix()}")
        procs.append(
            subprocess.Popen(
                cmd, cwd=node, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = [p.communicate(timeout=420)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    splits = [node / "data" / "processed" / "sample" / "train.parquet" for node in nodes]
    assert all(s.is_file() for s in splits) and _sha256(splits[0]) == _sha256(splits[1])
    summary = json.loads((run_dir / "metrics" / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and (run_dir / "checkpoints" / "best" / "labels.json").is_file()
