"""In-process throughput ceiling of a bundle: tokenize + ONNX Runtime on the same texts, no HTTP, no queue.

It reads the bundle files directly (``manifest.json``, ``tokenizer.json``, ``model.onnx``) as the contract
describes them, truncates to the manifest's ``max_length`` and pads each batch to its longest input, like
the server. Several thread layouts are tried (``WxIbB``: W Python threads, I ORT intra-op threads each,
batches of B consecutive texts); the best one is the ceiling. Usage::

    uv run python -m benchmarks.serving.ceiling --bundle outputs/bench-minilm/bundle-int8 \\
        --texts ../shared/data/tickets/helpdesk_customer_tickets.csv --duration 8 --json ceiling.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
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


def run_ceiling(
    bundle: Path, texts: Sequence[str], layouts: Sequence[Layout], duration_s: float, warmup_s: float = 1.0
) -> dict[str, Any]:
    results = []
    for layout in layouts:
        result = measure(bundle, texts, layout, duration_s, warmup_s)
        logger.info("ceiling %s: %.1f items/s (%d items)", result.layout, result.items_per_s, result.items)
        results.append(asdict(result))
    best = max(results, key=lambda r: r["items_per_s"])
    return {"bundle": str(bundle), "texts": len(texts), "layouts": results, "best": best}


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
    parser.add_argument("--json", type=Path, help="write the results here (atomically)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    recipe = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))["text_recipe"]
    texts = [build_text(t.subject, t.body, recipe) for t in load_tickets(args.texts, args.limit)]
    layouts = [Layout.parse(item) for item in args.layouts.split(",") if item.strip()]
    result = run_ceiling(args.bundle, texts, layouts, args.duration, args.warmup)
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        tmp.replace(args.json)
    logger.info("ceiling: %s at %.1f items/s", result["best"]["layout"], result["best"]["items_per_s"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
