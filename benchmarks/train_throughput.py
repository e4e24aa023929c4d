"""Training throughput: dynamic padding (+ length grouping) vs padding every batch to max_length.

Runs real optimizer steps (forward, backward, AdamW) of the training code's own pieces (model registry,
Collator, LengthGroupedBatchSampler, optimizer) on the same pool of real tickets, a few dozen batches per
mode, and prints samples/s side by side with the ratio. Not a unit test: rerun it on the machine you want
numbers for.

    # minilm on the real tickets at max_len 256 (a few minutes on 2 cores)
    nice -n 5 uv run python benchmarks/train_throughput.py
    # seconds, any machine
    uv run python benchmarks/train_throughput.py --data sample --model tiny --batches 8

Results (JSON) go to outputs/benchmarks/train_throughput-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

log = logging.getLogger("benchmarks.train_throughput")


def _texts_and_labels(data: str, limit: int, seed: int) -> tuple[list[str], list[int], str]:
    from hydra import compose, initialize_config_dir

    from training.data import prepare

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"data={data}"])
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        cfg.data.output_dir = tmp
        prepared = prepare(cfg.data)
    frame = prepared.train.sample(n=min(limit, len(prepared.train)), random_state=seed)
    return (
        frame["text"].tolist(),
        frame["label_id"].astype(int).tolist(),
        f"{data} ({len(prepared.train)} train rows)",
    )


def _run_mode(
    name: str,
    model: Any,
    batches: list[list[int]],
    ids: list[list[int]],
    labels: list[int],
    collate: Any,
    cfg: dict[str, Any],
    warmup: int,
) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F  # noqa: N812

    from training.loop import build_optimizer

    optimizer = build_optimizer(model, cfg)
    model.train()
    samples = real_tokens = padded_tokens = 0
    elapsed = 0.0
    for i, batch_ids in enumerate(batches):
        batch = collate([{"input_ids": ids[j], "label": labels[j]} for j in batch_ids])
        start = time.perf_counter()
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = F.cross_entropy(logits, batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:  # the first steps pay for allocator/thread-pool warm-up
            elapsed += time.perf_counter() - start
            samples += len(batch_ids)
            real_tokens += int(batch["attention_mask"].sum())
            padded_tokens += int(batch["input_ids"].numel())
    result = {
        "mode": name,
        "timed_batches": len(batches) - warmup,
        "samples": samples,
        "seconds": round(elapsed, 2),
        "samples_per_s": round(samples / elapsed, 2),
        "padding_fraction": round(1 - real_tokens / padded_tokens, 3),
        "mean_padded_length": round(padded_tokens / samples, 1),
    }
    log.info("%s", result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="tickets", help="data config group option (tickets, sample, full)")
    parser.add_argument("--model", default="minilm", choices=["minilm", "tiny", "distilbert_multilingual"])
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=24, help="timed batches per mode (plus --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    from training.logging_setup import configure_logging

    configure_logging()
    import torch

    from training.batching import Collator, LengthGroupedBatchSampler, encode_texts
    from training.loop import seed_everything
    from training.models import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    n_batches = args.batches + args.warmup
    pool = n_batches * args.batch_size * 4  # enough rows for length grouping to have something to group
    texts, labels, data_desc = _texts_and_labels(args.data, pool, args.seed)
    loaded = load_model(
        {"name": args.model, "max_length": args.max_length, "pretrained": None},
        ["low", "medium", "high"],
        texts,
    )
    ids = encode_texts(loaded.tokenizer, texts, args.max_length)
    pad = int(loaded.tokenizer.pad_token_id)
    cfg = {"lr": 5e-5, "weight_decay": 0.01, "head_lr_multiplier": 1.0}
    initial_state = {k: v.clone() for k, v in loaded.model.state_dict().items()}

    sampler = LengthGroupedBatchSampler([len(x) for x in ids], args.batch_size, seed=args.seed)
    grouped = sampler.batches()[:n_batches]
    rng = random.Random(args.seed)
    order = list(range(len(ids)))
    rng.shuffle(order)
    shuffled = [
        order[i : i + args.batch_size] for i in range(0, n_batches * args.batch_size, args.batch_size)
    ]
    modes = [
        ("padded_to_max_length", shuffled, Collator(pad, padding="max_length", max_length=args.max_length)),
        ("dynamic_padding", shuffled, Collator(pad)),
        ("dynamic_padding_length_grouped", grouped, Collator(pad)),
    ]
    results = []
    for name, batches, collate in modes:
        loaded.model.load_state_dict(initial_state)  # every mode starts from the same weights
        seed_everything(args.seed)
        results.append(_run_mode(name, loaded.model, batches, ids, labels, collate, cfg, args.warmup))
    base = results[0]["samples_per_s"]
    for result in results:
        result["speedup_vs_padded"] = round(result["samples_per_s"] / base, 2)

    load1, load5, _ = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    report = {
        "benchmark": "train_throughput",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_1m_5m_at_end": [round(load1, 2), round(load5, 2)],
            "torch": torch.__version__,
        },
        "config": {
            "data": data_desc,
            "model": args.model,
            "max_length": args.max_length,
            "batch_size": args.batch_size,
            "timed_batches": args.batches,
            "warmup": args.warmup,
        },
        "results": results,
    }
    output = (
        args.output
        or ROOT / "outputs" / "benchmarks" / f"train_throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [f"{'mode':<34}{'samples/s':>10}{'x padded':>10}{'padding':>9}{'mean len':>10}"]
    lines += [
        f"{r['mode']:<34}{r['samples_per_s']:>10.2f}{r['speedup_vs_padded']:>10.2f}"
        f"{r['padding_fraction']:>9.1%}{r['mean_padded_length']:>10.1f}"
        for r in results
    ]
    print("\n".join(lines))
    print(f"machine: {report['machine']}\nwritten: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
