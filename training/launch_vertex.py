"""Start ``torchrun`` on a Vertex AI replica: ``python -m training.launch_vertex [hydra overrides]``.

Vertex AI runs the same container command on every replica of every worker pool and describes the cluster in
the ``CLUSTER_SPEC`` env var (JSON)::

    {"cluster": {"workerpool0": ["host-0:2222"], "workerpool1": ["host-1:2222", "host-2:2222"]},
     "task": {"type": "workerpool1", "index": 0}, ...}

The primary replica (``workerpool0``, replicaCount 1) is node 0 and the rendezvous host; replica ``i`` of
``workerpool1`` is node ``i + 1``. Where ``CLUSTER_SPEC`` is absent, the node-level
``MASTER_ADDR``/``MASTER_PORT``/ ``RANK``/``WORLD_SIZE`` (set by Vertex's prebuilt PyTorch containers, one
value per replica) are used instead; with neither, it is a single-node run. Each node then runs one
``training.run`` process per local GPU; torchrun sets the per-process ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``
that ``training/distributed.py`` reads.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("training.launch_vertex")

DEFAULT_PORT = 29500


@dataclass(frozen=True)
class NodeSpec:
    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int


def node_spec(env: Mapping[str, str]) -> NodeSpec:
    """This replica's place in the cluster, from ``CLUSTER_SPEC`` or the node-level ``MASTER_*`` variables."""
    raw = env.get("CLUSTER_SPEC")
    if raw:
        spec = json.loads(raw)
        cluster = spec["cluster"]
        primary = cluster["workerpool0"]
        workers = cluster.get("workerpool1", [])
        task = spec["task"]
        if task["type"] == "workerpool0":
            node_rank = 0
        elif task["type"] == "workerpool1":
            node_rank = 1 + int(task["index"])
        else:
            raise ValueError(
                f"CLUSTER_SPEC task type {task['type']!r}: only workerpool0/1 run training replicas"
            )
        host = primary[0].rpartition(":")[0]
        # Vertex's own port (2222) belongs to the primary; torchrun's rendezvous uses a port of its own.
        master_port = int(env.get("MASTER_PORT", DEFAULT_PORT))
        return NodeSpec(len(primary) + len(workers), node_rank, host or primary[0], master_port)
    if "MASTER_ADDR" in env:
        return NodeSpec(
            int(env.get("WORLD_SIZE", "1")),
            int(env.get("RANK", "0")),
            env["MASTER_ADDR"],
            int(env.get("MASTER_PORT", DEFAULT_PORT)),
        )
    return NodeSpec(1, 0, "127.0.0.1", DEFAULT_PORT)


def torchrun_argv(spec: NodeSpec, nproc_per_node: int, overrides: Sequence[str]) -> list[str]:
    argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc_per_node}"]
    if spec.nnodes == 1:
        argv.append("--standalone")
    else:
        argv += [
            f"--nnodes={spec.nnodes}",
            f"--node_rank={spec.node_rank}",
            f"--master_addr={spec.master_addr}",
            f"--master_port={spec.master_port}",
        ]
    return [*argv, "-m", "training.run", *overrides]


def main(argv: Sequence[str] | None = None) -> None:
    from training.logging_setup import configure_logging

    configure_logging()
    import torch

    overrides = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    spec = node_spec(env)
    nproc = int(env.get("NPROC_PER_NODE", torch.cuda.device_count() or 1))
    command = torchrun_argv(spec, nproc, overrides)
    # torchrun must not inherit the node-level RANK/WORLD_SIZE: it sets per-process ones itself
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        os.environ.pop(key, None)
    log.info("node %d/%d, %d process(es): %s", spec.node_rank, spec.nnodes, nproc, " ".join(command))
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
