"""DDP through ``torchrun``: read its env vars, pick the backend, and keep side effects on rank 0.

``torchrun --nproc_per_node N -m training.run ...`` (or one ``torchrun`` per node with ``--nnodes/--node_rank/
--master_addr``; see ``training/launch_vertex.py`` for Vertex AI) sets ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def hydra_worker_overrides() -> list[str]:
    """Hydra overrides for ranks > 0: no run dir, no ``.hydra``, no log file (rank 0 owns those)."""
    if env_rank() == 0:
        return []
    return [
        "hydra.run.dir=.",
        "hydra.output_subdir=null",
        "hydra/job_logging=disabled",
        "hydra/hydra_logging=disabled",
    ]


def init_distributed(device_pref: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); a no-op for a plain run."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_pref != "cpu"
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    if rank != 0:
        logging.getLogger().setLevel(logging.WARNING)  # rank-0-only logging
    log.info("DDP: rank %d/%d (local %d), backend %s", rank, world_size, local_rank, backend)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, backend=backend)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast(info: DistInfo, value: T) -> T:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    if not info.enabled:
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(info: DistInfo, value: float) -> float:
    if not info.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    if info.backend == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return float(tensor.item())


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
