"""In-process throughput ceiling of a bundle: tokenize + ONNX Runtime on the same texts, no HTTP, no queue.

It reads the bundle files directly (``manifest.json``, ``tokenizer.json``, ``model.onnx``) as the contract
describes them, truncates to the manifest's ``max_length`` and pads each batch to its longest input, like
the server. Several thread layouts are tried (``WxIbB``: W Python threads, I ORT intra-op threads each,
batches of B consecutive texts); the best one is the ceiling.

It also measures per-ticket latency in-process (``--latency-layouts``, default ``1x1b1,1x2b1``): one thread
issues one ticket at a time (tokenize + ORT, no HTTP) and every ticket's time is recorded; p50/p99 of those
are what a server answering one client at full speed is compared with (``benchmarks.serving.run`` reports
the ratio). Usage::

    uv run python -m benchmarks.serving.ceiling --bundle outputs/bench-minilm/bundle-int8 \\
        --texts ../shared/data/tickets/helpdesk_customer_tickets.csv --duration 8 --json ceiling.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bundle_contract import build_text  # the one torch-free text recipe (contracts section 1)

logger = logging.getLogger("benchmarks.serving.ceiling")

DEFAULT_LAYOUTS = ("2x1b1", "1x2b1", "2x1b4", "2x1b8")
#: one thread, one ticket at a time: 1 and 2 ORT intra-op threads (the 1-client reference is 1x2b1)
DEFAULT_LATENCY_LAYOUTS = ("1x1b1", "1x2b1")
_LAYOUT = re.compile(r"^(\d+)x(\d+)b(\d+)$")


@dataclass(frozen=True, slots=True)
class Layout:
    workers: int
    intra_op_threads: int
    batch_size: int

    @property
    def name(self) -> str:
        return f"{self.workers}x{self.intra_op_threads}b{self.batch_size}"

    @classmethod
    def parse(cls, text: str) -> Layout:
        match = _LAYOUT.match(text.strip())
        if not match or min(int(g) for g in match.groups()) < 1:
            raise ValueError(f"layout {text!r} is not WxIbB with positive numbers (e.g. 2x1b1)")
        workers, intra, batch = (int(g) for g in match.groups())
        return cls(workers, intra, batch)


@dataclass(frozen=True, slots=True)
class CeilingResult:
    layout: str
    items: int
    seconds: float
    items_per_s: float
    mean_tokens: float


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """Per-ticket latency of one thread issuing one ticket at a time (tokenize + ORT), in milliseconds."""

    layout: str
    items: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    mean_tokens: float


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the load generator's rule), NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100.0 * len(ordered))) - 1]


class BundleRunner:
    """Tokenizer + ORT session of one bundle with a fixed intra-op thread count."""

    def __init__(self, bundle: Path, intra_op_threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.manifest: dict[str, Any] = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(bundle / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=int(self.manifest["max_length"]))
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.output = str(self.manifest.get("output", "logits"))
        self.pad_id = int(self.manifest.get("pad_token_id", 0))

    def run(self, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """Logits of ``texts`` (one batch) and the number of real tokens."""
        encodings = (
            self.tokenizer.encode_batch(list(texts)) if len(texts) > 1 else [self.tokenizer.encode(texts[0])]
        )
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids
        available = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (logits,) = self.session.run([self.output], {name: available[name] for name in self.input_names})
        return np.asarray(logits), int(mask.sum())


def measure(
    bundle: Path, texts: Sequence[str], layout: Layout, duration_s: float, warmup_s: float = 1.0
) -> CeilingResult:
    """Run ``layout`` for ``warmup_s`` (discarded) then ``duration_s``; count items finished in the window."""
    runner = BundleRunner(bundle, layout.intra_op_threads)
    batches = [texts[i : i + layout.batch_size] for i in range(0, len(texts), layout.batch_size)]
    sequence = itertools.cycle(batches)
    lock = threading.Lock()
    counts = {"items": 0, "tokens": 0}
    start = time.perf_counter()
    window_start = start + warmup_s
    window_end = window_start + duration_s

    def worker() -> None:
        while True:
            with lock:
                batch = next(sequence)
            _, tokens = runner.run(batch)
            now = time.perf_counter()
            if now > window_end:
                return
            if now >= window_start:
                with lock:
                    counts["items"] += len(batch)
                    counts["tokens"] += tokens

    threads = [threading.Thread(target=worker, name=f"ceiling-{i}") for i in range(layout.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    items = counts["items"]
    return CeilingResult(
        layout=layout.name,
        items=items,
        seconds=duration_s,
        items_per_s=round(items / duration_s, 2),
        mean_tokens=round(counts["tokens"] / items, 1) if items else 0.0,
    )


def measure_latency(
    bundle: Path, texts: Sequence[str], layout: Layout, duration_s: float, warmup_s: float = 1.0
) -> LatencyResult:
    """One thread, one ticket at a time, in ``texts`` order: each ticket's tokenize + ORT time, for
    ``warmup_s`` (discarded) then ``duration_s``. ``layout`` must be ``1xIb1``."""
    if layout.workers != 1 or layout.batch_size != 1:
        raise ValueError(f"latency layout {layout.name} must be 1xIb1 (one thread, one ticket at a time)")
    runner = BundleRunner(bundle, layout.intra_op_threads)
    latencies_ms: list[float] = []
    tokens = 0
    start = time.perf_counter()
    window_start = start + warmup_s
    window_end = window_start + duration_s
    for text in itertools.cycle(texts):
        began = time.perf_counter()
        _, n = runner.run([text])
        done = time.perf_counter()
        if done > window_end:
            break
        if began >= window_start:
            latencies_ms.append((done - began) * 1000.0)
            tokens += n
    items = len(latencies_ms)
    return LatencyResult(
        layout=layout.name,
        items=items,
        seconds=duration_s,
        p50_ms=round(percentile(latencies_ms, 50), 2),
        p90_ms=round(percentile(latencies_ms, 90), 2),
        p99_ms=round(percentile(latencies_ms, 99), 2),
        mean_ms=round(sum(latencies_ms) / items, 2) if items else math.nan,
        mean_tokens=round(tokens / items, 1) if items else 0.0,
    )


def run_ceiling(
    bundle: Path,
    texts: Sequence[str],
    layouts: Sequence[Layout],
    duration_s: float,
    warmup_s: float = 1.0,
    latency_layouts: Sequence[Layout] = (),
) -> dict[str, Any]:
    results = []
    for layout in layouts:
        result = measure(bundle, texts, layout, duration_s, warmup_s)
        logger.info("ceiling %s: %.1f items/s (%d items)", result.layout, result.items_per_s, result.items)
        results.append(asdict(result))
    latency = []
    for layout in latency_layouts:
        lat = measure_latency(bundle, texts, layout, duration_s, warmup_s)
        logger.info(
            "latency %s: p50 %.2f ms, p99 %.2f ms (%d tickets)", lat.layout, lat.p50_ms, lat.p99_ms, lat.items
        )
        latency.append(asdict(lat))
    best = max(results, key=lambda r: r["items_per_s"]) if results else None
    return {"bundle": str(bundle), "texts": len(texts), "layouts": results, "best": best, "latency": latency}


def main(argv: list[str] | None = None) -> int:
    from loadtests.payloads import load_tickets

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--texts", type=Path, required=True, help="ticket CSV (subject, body)")
    parser.add_argument("--limit", type=int, default=2000, help="tickets read at most")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per layout")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--layouts", default=",".join(DEFAULT_LAYOUTS), help="comma-separated WxIbB layouts")
    parser.add_argument(
        "--latency-layouts",
        default=",".join(DEFAULT_LATENCY_LAYOUTS),
        help="comma-separated 1xIb1 layouts for per-ticket latency (empty: skip)",
    )
    parser.add_argument("--json", type=Path, help="write the results here (atomically)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    recipe = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))["text_recipe"]
    texts = [build_text(t.subject, t.body, recipe) for t in load_tickets(args.texts, args.limit)]
    try:
        layouts = [Layout.parse(item) for item in args.layouts.split(",") if item.strip()]
        latency_layouts = [Layout.parse(item) for item in args.latency_layouts.split(",") if item.strip()]
        bad = [lay.name for lay in latency_layouts if lay.workers != 1 or lay.batch_size != 1]
        if bad:
            raise ValueError(f"latency layouts must be 1xIb1 (one thread, one ticket), got {bad}")
    except ValueError as exc:
        parser.error(str(exc))
    result = run_ceiling(args.bundle, texts, layouts, args.duration, args.warmup, latency_layouts)
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        tmp.replace(args.json)
    if result["best"]:
        logger.info("ceiling: %s at %.1f items/s", result["best"]["layout"], result["best"]["items_per_s"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
