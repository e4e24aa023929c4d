"""Dynamic int8 (what export ships) against static QDQ int8 calibrated on training tickets, one checkpoint,
side by side in one run: do statically calibrated activations flip fewer decisions than run-time ones?

    nice -n 5 uv run python -m benchmarks.static_quant \
        --checkpoint outputs/train/<run>/checkpoints/best --prepared data/processed/tickets

Both int8 models start from the same optimised fp32 ONNX that ``export`` builds (``export.convert``), with the
CPU's quantization settings (``export.quantize.resolve_settings``: ISA, per-channel, reduce_range). Static
quantization is onnxruntime's own ``quantize_static`` (QDQ format, MinMax/percentile/entropy calibration on
``--calibration-rows`` training tickets at batch 1, as served; padded to max length for the histogram methods,
which need one shape). Every model scores the val and test tickets at
batch 1 with the checkpoint's ``tokenizer.json``; printed per split: macro-F1, argmax agreement with fp32 (raw
and on non-ties, fp32 top-1 minus top-2 probability >= the gate's tie margin), flips, size and median latency.
Writes ``<out>/static_quant.json`` and ``.md``; the machine (CPU model, ISA flags, threads) is in both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from export import convert, quantize
from export.verify import Thresholds
from quality.calibration import macro_f1, softmax

METHODS = ("minmax", "percentile", "entropy")


def encoder(checkpoint: Path, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    return tokenizer


def feeds(
    tokenizer: Any, texts: Sequence[str], input_names: Sequence[str], pad_to: int | None = None
) -> Iterator[dict[str, Any]]:
    """One batch-1 feed per text; ``pad_to`` pads every one to that length (the histogram calibrators need one
    shape for all samples)."""
    for enc in tokenizer.encode_batch(list(texts)):
        if pad_to is not None:
            enc.pad(pad_to, pad_id=tokenizer.token_to_id("[PAD]") or 0)
        arrays = {
            "input_ids": np.asarray([enc.ids], dtype=np.int64),
            "attention_mask": np.asarray([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.asarray([enc.type_ids], dtype=np.int64),
        }
        yield {name: arrays[name] for name in input_names}


def session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantize_static_qdq(
    fp32: Path, out: Path, calibration: list[dict[str, Any]], settings: Any, method: str
) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.items, None)

    out.parent.mkdir(parents=True, exist_ok=True)
    quantize_static(
        str(fp32),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=settings.per_channel,
        reduce_range=settings.reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method={
            "minmax": CalibrationMethod.MinMax,
            "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy,
        }[method],
        extra_options={"CalibTensorRangeSymmetric": False},
    )
    return out


def score(path: Path, items: list[dict[str, Any]], threads: int) -> tuple[np.ndarray, list[float]]:
    sess = session(path, threads)
    logits, seconds = [], []
    for feed in items[:20]:  # warm-up
        sess.run(None, feed)
    for feed in items:
        start = time.perf_counter()
        logits.append(sess.run(None, feed)[0][0])
        seconds.append(time.perf_counter() - start)
    return np.asarray(logits, dtype=np.float64), seconds


def agreement(reference: np.ndarray, logits: np.ndarray, tie_margin: float) -> dict[str, Any]:
    top2 = np.sort(softmax(reference), axis=1)[:, -2:]
    non_tie = (top2[:, 1] - top2[:, 0]) >= tie_margin
    same = reference.argmax(1) == logits.argmax(1)
    return {
        "raw": float(same.mean()),
        "non_tie": float(same[non_tie].mean()) if non_tie.any() else None,
        "n_non_tie": int(non_tie.sum()),
        "flips": int((~same).sum()),
        "non_tie_flips": int((~same & non_tie).sum()),
    }


def machine(threads: int) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    flags = sorted(f for f in quantize.cpu_flags() if f in quantize.RECORDED_FLAGS)
    return {"cpu": cpu, "isa_flags": flags, "cores": os.cpu_count(), "threads": threads}


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']} ({', '.join(m['isa_flags'])}), {m['threads']} ORT thread(s); settings "
        f"{result['settings']}; {result['calibration_rows']} calibration tickets.",
        "",
        "| model | split | macro-F1 | vs fp32 | agreement raw | non-tie (n) | flips | MB | median ms (b=1) |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for name, model in result["models"].items():
        for split, s in model["splits"].items():
            ref = result["models"]["fp32"]["splits"][split]["macro_f1"]
            a = s["agreement"]
            non_tie = "-" if a["non_tie"] is None else f"{a['non_tie']:.4f} ({a['n_non_tie']})"
            lines.append(
                f"| {name} | {split} | {s['macro_f1']:.4f} | {100 * (s['macro_f1'] - ref):+.1f} | "
                f"{a['raw']:.4f} | {non_tie} | {a['flips']} | {model['mb']:.1f} | {s['median_ms']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a run's checkpoints/best")
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data dir (train/val/test)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/static_quant"))
    parser.add_argument("--calibration-rows", type=int, default=256)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["minmax", "percentile"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="score only the first N val/test tickets")
    args = parser.parse_args(argv)

    recipe = json.loads((args.checkpoint / "recipe.json").read_text())
    tokenizer = encoder(args.checkpoint, int(recipe["max_length"]))
    settings = quantize.resolve_settings()
    result: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "machine": machine(args.threads),
        "settings": {
            "isa": settings.isa,
            "per_channel": settings.per_channel,
            "reduce_range": settings.reduce_range,
        },
        "calibration_rows": args.calibration_rows,
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="static-quant-") as tmp:
        work = Path(tmp)
        fp32 = convert.optimize_fp32(convert.export_fp32(args.checkpoint, work / "raw").parent, work / "fp32")
        names = [i.name for i in session(fp32, 1).get_inputs()]
        train = pd.read_parquet(args.prepared / "train.parquet")
        rows = train.sample(n=min(args.calibration_rows, len(train)), random_state=0)["text"].tolist()
        paths = {"fp32": fp32, "dynamic": quantize.quantize_int8(fp32.parent, work / "dynamic", settings)}
        for method in args.methods:
            pad_to = None if method == "minmax" else int(recipe["max_length"])
            calibration = list(feeds(tokenizer, rows, names, pad_to))
            paths[f"static-{method}"] = quantize_static_qdq(
                fp32, work / f"static-{method}" / "model.onnx", calibration, settings, method
            )
        splits = {}
        for split in ("val", "test"):
            frame = pd.read_parquet(args.prepared / f"{split}.parquet").iloc[: args.limit]
            splits[split] = (
                list(feeds(tokenizer, frame["text"].tolist(), names)),
                frame["label_id"].to_numpy(),
            )
        reference: dict[str, np.ndarray] = {}
        tie_margin = Thresholds().tie_margin
        for name, path in paths.items():
            model: dict[str, Any] = {"mb": path.stat().st_size / 1e6, "splits": {}}
            for split, (items, truth) in splits.items():
                logits, seconds = score(path, items, args.threads)
                reference.setdefault(split, logits)
                model["splits"][split] = {
                    "n": len(items),
                    "macro_f1": macro_f1(truth, logits.argmax(1), 3),
                    "agreement": agreement(reference[split], logits, tie_margin),
                    "median_ms": 1000 * statistics.median(seconds),
                }
            result["models"][name] = model
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "static_quant.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (args.out / "static_quant.md").write_text(table)
    print(table)
    return result


if __name__ == "__main__":
    main()
