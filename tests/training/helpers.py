"""Helpers for the training tests: run ``python -m training.run`` (or torchrun) as a real subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def training_env(**extra: str) -> dict[str, str]:
    """The test process's environment, one thread per process, no W&B credentials (so W&B runs offline)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "WANDB_MODE", "RANK", "WORLD_SIZE")
    }
    env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_cmd(args: Sequence[str], run_dir: Path) -> list[str]:
    """argv of ``python -m training.run`` writing into ``run_dir`` (data into ``run_dir/processed``)."""
    return [
        sys.executable,
        "-m",
        "training.run",
        *args,
        f"hydra.run.dir={run_dir.as_posix()}",
        f"data.output_dir={(run_dir / 'processed').as_posix()}",
    ]


def run_training(
    args: Sequence[str], run_dir: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        run_cmd(args, run_dir),
        cwd=REPO_ROOT,
        env=training_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wandb_records(run_file: Path) -> list[Any]:
    """The records of an offline ``run-<id>.wandb`` file (a LevelDB-style log of W&B protobuf records)."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert data[:4] == b":W&B", f"{run_file} is not a W&B run file"
    records, pos, block, chunk = [], 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block trailer too short for a record header
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


def wandb_history(records: list[Any]) -> list[dict[str, Any]]:
    return [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
