"""CLUSTER_SPEC (Vertex AI) -> torchrun arguments."""

from __future__ import annotations

import json

from training.launch_vertex import node_spec, torchrun_argv

SPEC = {
    "cluster": {
        "workerpool0": ["cmle-training-workerpool0-ab-0:2222"],
        "workerpool1": ["cmle-training-workerpool1-ab-0:2222", "cmle-training-workerpool1-ab-1:2222"],
    },
    "environment": "cloud",
    "task": {"type": "workerpool1", "index": 1},
}


def test_worker_replica_maps_to_its_node_rank() -> None:
    spec = node_spec({"CLUSTER_SPEC": json.dumps(SPEC)})
    assert (spec.nnodes, spec.node_rank, spec.master_addr, spec.master_port) == (
        3,
        2,
        "cmle-training-workerpool0-ab-0",
        29500,
    )
    argv = torchrun_argv(spec, 4, ["experiment=best", "hydra.run.dir=/gcs/bucket/run"])
    assert argv[1:] == [
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=4",
        "--nnodes=3",
        "--node_rank=2",
        "--master_addr=cmle-training-workerpool0-ab-0",
        "--master_port=29500",
        "-m",
        "training.run",
        "experiment=best",
        "hydra.run.dir=/gcs/bucket/run",
    ]


def test_primary_is_node_zero_and_single_node_is_standalone() -> None:
    primary = dict(SPEC, task={"type": "workerpool0", "index": 0})
    assert node_spec({"CLUSTER_SPEC": json.dumps(primary)}).node_rank == 0
    single = node_spec({})
    assert single.nnodes == 1 and "--standalone" in torchrun_argv(single, 1, [])


def test_node_level_master_env_without_cluster_spec() -> None:
    spec = node_spec({"MASTER_ADDR": "10.0.0.2", "MASTER_PORT": "23456", "RANK": "1", "WORLD_SIZE": "2"})
    assert (spec.nnodes, spec.node_rank, spec.master_addr, spec.master_port) == (2, 1, "10.0.0.2", 23456)
