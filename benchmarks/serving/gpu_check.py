"""The prepared GPU check (issue 12): logit parity of a GPU bundle on CUDA against its fp32 source on CPU, and
in-process throughput on CUDA at batch 1, 8 and 32. One short run on a GPU machine::

    uv run python -m benchmarks.serving.gpu_check --gpu-bundle bundles/<v>-cuda-fp16 \\
        --cpu-bundle bundles/<v>-fp32 --seconds 10 \\
        --texts ../shared/data/tickets/aa_dataset-tickets-multi-lang-5-2-50-version.csv

Prints one JSON object (parity, providers, items/s per batch size). Without CUDAExecutionProvider it says so
and exits 2 (nothing to measure).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bundle_contract import build_text, load_bundle
from loadtests.payloads import load_tickets
from server.engine import Engine


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serving.gpu_check")
    p.add_argument("--gpu-bundle", type=Path, required=True)
    p.add_argument("--cpu-bundle", type=Path, required=True, help="the fp32 source bundle")
    p.add_argument("--texts", type=Path, required=True)
    p.add_argument("--n-texts", type=int, default=512)
    p.add_argument("--seconds", type=float, default=10.0, help="per batch size")
    p.add_argument("--batch-sizes", default="1,8,32")
    args = p.parse_args(argv)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print(json.dumps({"error": "no CUDAExecutionProvider", "providers": ort.get_available_providers()}))
        return 2
    gpu = Engine.load(load_bundle(args.gpu_bundle), provider="cuda")
    cpu = Engine.load(load_bundle(args.cpu_bundle), provider="cpu")
    recipe = gpu.manifest.text_recipe
    texts = [build_text(t.subject, t.body, recipe) for t in load_tickets(args.texts, limit=args.n_texts)]
    encoded = gpu.tokenize(texts)
    diffs, agree = [], 0
    for i in range(0, min(len(encoded), 256), 8):
        batch = encoded[i : i + 8]
        a, b = gpu.infer(batch), cpu.infer(batch)
        diffs.append(float(np.abs(a - b).max()))
        agree += int((a.argmax(1) == b.argmax(1)).sum())
    report: dict[str, object] = {
        "providers": gpu.providers,
        "precision": gpu.manifest.dtype,
        "max_abs_logit_diff": max(diffs),
        "label_agreement": agree / min(len(encoded), 256),
        "items_per_s": {},
    }
    for size in (int(x) for x in args.batch_sizes.split(",")):
        by_length = sorted(encoded, key=lambda e: e.n_tokens)  # length-grouped, as the batcher does
        batches = [by_length[i : i + size] for i in range(0, len(by_length) - size + 1, size)]
        gpu.infer(batches[0])  # warm-up (CUDA graphs, allocator)
        done, started, k = 0, time.perf_counter(), 0
        while time.perf_counter() - started < args.seconds:
            done += len(gpu.infer(batches[k % len(batches)]))
            k += 1
        report["items_per_s"][str(size)] = round(done / (time.perf_counter() - started), 1)  # type: ignore[index]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
