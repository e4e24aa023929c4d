"""Start ``torchrun`` on a Vertex AI replica: ``python -m training.launch_vertex [hydra overrides]``.

Vertex runs the same command on every replica and describes the cluster in ``CLUSTER_SPEC`` (JSON): the
primary (``workerpool0``) is node 0 and the rendezvous host, replica ``i`` of ``workerpool1`` is node i + 1.
Without it, the node-level ``MASTER_ADDR``/``MASTER_PORT``/``RANK``/``WORLD_SIZE`` of Vertex's PyTorch
containers are used; with neither, it is one node. torchrun then starts one ``training.run`` per local GPU
(docs/training.md, "Distributed training").
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
