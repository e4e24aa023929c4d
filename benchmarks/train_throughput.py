"""Training throughput: dynamic padding (+ length grouping) vs padding every batch to max_length; and, with
``--compare-loops REV``, the training loop of this checkout (``transformers.Trainer``) against the one of an
older commit (e.g. the hand-written loop before issue 10), side by side.

Padding modes: real optimizer steps (forward, backward, AdamW) of the training code's own pieces (model
registry, ``DataCollatorWithPadding``, the seeded length-grouped sampler) on the same pool of real tickets,
a few dozen batches per mode. Loops: each loop trains ``--batches`` optimizer steps (after ``--warmup``) in
its own subprocess on the same rows, alternating old/new for ``--rounds`` rounds; the old loop runs from
``git archive REV training`` in a temp dir. Not a unit test: rerun it on the machine you want numbers for.

    # minilm on the real tickets at max_len 256 (a few minutes on 2 cores)
    nice -n 5 uv run python benchmarks/train_throughput.py
    # seconds, any machine
    uv run python benchmarks/train_throughput.py --data sample --model tiny --batches 8
    # old hand-written loop (commit 7e48f2f) vs the Trainer loop: MiniLM, max_len 128, 2 threads
    nice -n 5 uv run python benchmarks/train_throughput.py --compare-loops 7e48f2f --max-length 128 \\
        --threads 2

Results (JSON) go to outputs/benchmarks/train_throughput-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# run as a script from anywhere; a --worker of --compare-loops imports `training` from the tree it is given
sys.path.insert(0, os.environ.get("TRAIN_THROUGHPUT_TREE") or str(ROOT))
LABELS = ["low", "medium", "high"]

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
    warmup: int,
) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F  # noqa: N812

    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
    model.train()
    samples = real_tokens = padded_tokens = 0
    elapsed = 0.0
    for i, batch_ids in enumerate(batches):
        batch = collate([{"input_ids": ids[j], "labels": labels[j]} for j in batch_ids])
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


def _machine() -> dict[str, Any]:
    import torch

    load1, load5, _ = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    cpu = next((line.split(":", 1)[1].strip() for line in _lscpu() if line.startswith("Model name")), None)
    flags = next((line.split(":", 1)[1].split() for line in _lscpu() if line.startswith("Flags")), [])
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "isa": [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in flags],
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_1m_5m_at_end": [round(load1, 2), round(load5, 2)],
        "torch": torch.__version__,
    }


def _lscpu() -> list[str]:
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines()
    except OSError:
        return []


def _loop_worker(args: argparse.Namespace) -> int:
    """One loop (``old``: the ``training`` package of TRAIN_THROUGHPUT_TREE, ``new``: this tree's), timed per
    optimizer step from the loop's own per-step hook; prints one JSON line."""
    import torch

    rows = json.loads(args.rows.read_text(encoding="utf-8"))
    torch.set_num_threads(args.threads or torch.get_num_threads())
    from training.models import load_model

    # this tree keeps encode_texts in training.predict; the old tree in training.batching
    encode_texts = (
        getattr(import_module("training.predict"), "encode_texts", None)
        or import_module("training.batching").encode_texts
    )

    torch.manual_seed(args.seed)
    loaded = load_model(
        {"name": args.model, "max_length": args.max_length, "pretrained": None}, LABELS, rows["texts"]
    )
    ids = encode_texts(loaded.tokenizer, rows["texts"], args.max_length)
    steps = args.batches + args.warmup
    stamps: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        if args.worker == "old":
            # the old tree's modules (they do not exist in this checkout any more)
            loop: Any = import_module("training.loop")
            batching: Any = import_module("training.batching")
            dist_info: Any = import_module("training.distributed").DistInfo
            tracker_cls: Any = import_module("training.tracking").Tracker

            class _Stamps(tracker_cls):
                def log_step(self, step: int, values: Any) -> None:
                    stamps.append(time.perf_counter())

            cfg = {
                "batch_size": args.batch_size, "eval_batch_size": 64, "grad_accum_steps": 1, "lr": 5e-5,
                "head_lr_multiplier": 1.0, "weight_decay": 0.01, "warmup_ratio": 0.1, "max_grad_norm": 1.0,
                "max_epochs": 1000, "max_steps": steps, "early_stopping_patience": None,
                "save_every_n_steps": 0, "log_every_n_steps": 1, "progress_bar": False, "class_weights": None,
                "precision": "fp32",
            }  # fmt: skip
            old = loop.Trainer(
                model=loaded.model,
                train_set=batching.TokenizedDataset(ids, rows["labels"]),
                val_set=loop.EvalSet(ids[:2], rows["labels"][:2], ["en", "en"]),
                labels=LABELS,
                cfg=cfg,
                seed=args.seed,
                pad_token_id=int(loaded.tokenizer.pad_token_id),
                max_length=args.max_length,
                dist_info=dist_info(),
                device=torch.device("cpu"),
                tracker=_Stamps(),
                run_dir=Path(tmp),
                on_improved=lambda *_: None,
                on_state=lambda _: None,
            )
            old.fit()
        else:
            from omegaconf import OmegaConf
            from transformers import DataCollatorWithPadding, PrinterCallback, TrainerCallback

            from training.run import training_arguments
            from training.trainer import TicketTrainer

            class _StampCallback(TrainerCallback):
                def on_step_end(self, *_: Any, **__: Any) -> None:
                    stamps.append(time.perf_counter())

            base = OmegaConf.load(ROOT / "configs" / "trainer" / "cpu.yaml")
            t: Any = OmegaConf.merge(
                base, {"batch_size": args.batch_size, "max_steps": steps, "max_epochs": 1000}
            )
            targs = training_arguments(t, Path(tmp) / "checkpoints" / "last", args.seed, [])
            targs.eval_strategy = targs.save_strategy = "no"
            targs.disable_tqdm = True
            trainer = TicketTrainer(
                model=loaded.model,
                args=targs,
                train_dataset=[
                    {"input_ids": x, "label": y} for x, y in zip(ids, rows["labels"], strict=True)
                ],
                data_collator=DataCollatorWithPadding(loaded.tokenizer),
                processing_class=loaded.tokenizer,
                callbacks=[_StampCallback()],
            )
            trainer.remove_callback(PrinterCallback)
            trainer.train()
    timed = stamps[args.warmup :]
    seconds = timed[-1] - stamps[args.warmup - 1] if args.warmup else timed[-1] - timed[0]
    samples = (len(timed) if args.warmup else len(timed) - 1) * args.batch_size
    print(json.dumps({"loop": args.worker, "steps": len(stamps), "samples_per_s": samples / seconds}))
    return 0


def _compare_loops(args: argparse.Namespace, texts: list[str], labels: list[int], data_desc: str) -> int:
    results: dict[str, list[float]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="bench-loops-") as tmp:
        old_tree = Path(tmp) / "old"
        old_tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.compare_loops, "training"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
        rows = Path(tmp) / "rows.json"
        rows.write_text(json.dumps({"texts": texts, "labels": labels}), encoding="utf-8")
        worker = [sys.executable, str(Path(__file__).resolve()), "--rows", str(rows), "--model", args.model]
        worker += ["--max-length", str(args.max_length), "--batch-size", str(args.batch_size)]
        worker += ["--batches", str(args.batches), "--warmup", str(args.warmup), "--seed", str(args.seed)]
        worker += ["--threads", str(args.threads or 0)]
        for _ in range(args.rounds):
            for loop, tree in (("old", old_tree), ("new", ROOT)):
                env = {**os.environ, "TRAIN_THROUGHPUT_TREE": str(tree), "TOKENIZERS_PARALLELISM": "false"}
                out = subprocess.run(
                    [*worker, "--worker", loop], env=env, capture_output=True, text=True, check=False
                )
                if out.returncode != 0:
                    sys.stderr.write(out.stderr[-4000:])
                    return 1
                result = json.loads(out.stdout.strip().splitlines()[-1])
                results[loop].append(result["samples_per_s"])
                log.info("%s loop: %.2f samples/s", loop, result["samples_per_s"])
    mean = {loop: sum(v) / len(v) for loop, v in results.items()}
    report = {
        "benchmark": "train_throughput_loops",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "config": {
            "data": data_desc,
            "model": args.model,
            "max_length": args.max_length,
            "batch_size": args.batch_size,
            "timed_steps": args.batches,
            "warmup": args.warmup,
            "threads": args.threads,
            "old_rev": args.compare_loops,
        },
        "samples_per_s": results,
        "new_over_old": round(mean["new"] / mean["old"], 3),
    }
    output = (
        args.output or ROOT / "outputs" / "benchmarks" / f"train_loops-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"old loop ({args.compare_loops}): {mean['old']:.2f} samples/s, new loop: {mean['new']:.2f} samples/s"
    )
    print(f"new / old: {report['new_over_old']:.3f}   rounds: {results}")
    print(f"machine: {report['machine']}\nwritten: {output}")
    return 0


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
    parser.add_argument("--compare-loops", metavar="REV", default=None, help="old loop's commit vs this tree")
    parser.add_argument("--rounds", type=int, default=2, help="--compare-loops: alternating rounds per loop")
    parser.add_argument("--worker", choices=["old", "new"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _loop_worker(args)

    from training.logging_setup import configure_logging

    configure_logging()
    import torch
    from transformers import DataCollatorWithPadding, set_seed

    from training.models import load_model
    from training.predict import encode_texts
    from training.trainer import SeededLengthGroupedSampler

    if args.threads:
        torch.set_num_threads(args.threads)
    n_batches = args.batches + args.warmup
    pool = n_batches * args.batch_size * 4  # enough rows for length grouping to have something to group
    texts, labels, data_desc = _texts_and_labels(args.data, pool, args.seed)
    if args.compare_loops:
        return _compare_loops(args, texts, labels, data_desc)
    loaded = load_model(
        {"name": args.model, "max_length": args.max_length, "pretrained": None}, LABELS, texts
    )
    ids = encode_texts(loaded.tokenizer, texts, args.max_length)
    initial_state = {k: v.clone() for k, v in loaded.model.state_dict().items()}

    sampler = SeededLengthGroupedSampler(args.batch_size, [{"input_ids": x} for x in ids], args.seed)
    flat = list(sampler)
    grouped = [flat[i : i + args.batch_size] for i in range(0, len(flat), args.batch_size)][:n_batches]
    rng = random.Random(args.seed)
    order = list(range(len(ids)))
    rng.shuffle(order)
    shuffled = [
        order[i : i + args.batch_size] for i in range(0, n_batches * args.batch_size, args.batch_size)
    ]
    padded = DataCollatorWithPadding(loaded.tokenizer, padding="max_length", max_length=args.max_length)
    modes = [
        ("padded_to_max_length", shuffled, padded),
        ("dynamic_padding", shuffled, DataCollatorWithPadding(loaded.tokenizer)),
        ("dynamic_padding_length_grouped", grouped, DataCollatorWithPadding(loaded.tokenizer)),
    ]
    results = []
    for name, batches, collate in modes:
        loaded.model.load_state_dict(initial_state)  # every mode starts from the same weights
        set_seed(args.seed)
        results.append(_run_mode(name, loaded.model, batches, ids, labels, collate, args.warmup))
    base = results[0]["samples_per_s"]
    for result in results:
        result["speedup_vs_padded"] = round(result["samples_per_s"] / base, 2)

    report = {
        "benchmark": "train_throughput",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
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
