"""Score a bundle exactly as users get it: one ticket per `POST /predict` to a real server process.

    uv run python -m benchmarks.served_quality --bundle bundles/<model_version> \
        --tickets data/processed/crossfile/test.parquet [--tickets more.csv ...] [--json out.json]

Starts `python -m server` on a free 127.0.0.1 port (or uses --url), sends every ticket alone (batch 1, the
production default on CPU), and reports what a support team feels: macro-F1, accuracy, recall per label,
macro-F1 per language, expected calibration error of the served `confidence`, and the review band (share of
tickets with `needs_review: false` and their accuracy), beside the coverage at 70% accuracy. Tickets come from
prepared splits (parquet with `label`) or raw dataset files (CSV/parquet with `priority`, read with the data
stage's own loader, so the dataset's literal `\\n` escapes are undone as in training).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from benchmarks.overload import Server
from quality.calibration import coverage_at_accuracy, top_label_ece

REPO_ROOT = Path(__file__).resolve().parents[1]  # where `python -m server` runs


def load_tickets(paths: Sequence[Path]) -> pd.DataFrame:
    """subject, body, label, language of every ticket in ``paths`` (prepared splits or raw dataset files)."""
    from training.data.io.loaders import read_table

    frames = []
    for path in paths:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else read_table(path)
        if "label" not in frame and "priority" in frame:
            frame = frame.assign(
                label=frame["priority"]
                .str.strip()
                .str.lower()
                .replace({"very_low": "low", "critical": "high"})
            )
        missing = [c for c in ("body", "label") if c not in frame]
        if missing:
            raise SystemExit(f"{path}: missing column(s) {missing}")
        frames.append(
            pd.DataFrame(
                {
                    "subject": frame.get("subject", pd.Series([""] * len(frame))).fillna("").astype(str),
                    "body": frame["body"].fillna("").astype(str),
                    "label": frame["label"].astype(str),
                    "language": frame.get("language", pd.Series(["?"] * len(frame))).fillna("?").astype(str),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    return out[out["body"].str.strip() != ""].reset_index(drop=True)


def _macro_f1(y: np.ndarray, p: np.ndarray, labels: Sequence[str]) -> float:
    scores = []
    for lab in labels:
        tp = np.sum((p == lab) & (y == lab))
        denom = np.sum(p == lab) + np.sum(y == lab)
        scores.append(0.0 if tp == 0 else 2 * tp / denom)
    return float(np.mean(scores))


def score(answers: pd.DataFrame, labels: Sequence[str], target: float = 0.70) -> dict[str, Any]:
    y = answers["label"].to_numpy()
    p = answers["pred"].to_numpy()
    conf = answers["confidence"].to_numpy(dtype=float)
    correct = (y == p).astype(float)
    coverage, _ = coverage_at_accuracy(conf, correct, target)
    kept = ~answers["needs_review"].to_numpy(dtype=bool)
    return {
        "n": len(answers),
        "macro_f1": round(_macro_f1(y, p, labels), 4),
        "accuracy": round(float(correct.mean()), 4),
        "recall": {lab: round(float(np.mean(p[y == lab] == lab)), 3) for lab in labels if (y == lab).any()},
        "per_language_macro_f1": {
            lang: round(_macro_f1(y[m], p[m], labels), 3)
            for lang in sorted(set(answers["language"]))
            if (m := answers["language"].to_numpy() == lang).sum() >= 10
        },
        "ece": round(top_label_ece(conf, correct), 4),
        f"coverage_at_{round(target * 100)}": round(coverage, 3),
        "review_band": {
            "auto_triaged": round(float(kept.mean()), 3),
            "accuracy_auto_triaged": round(float(correct[kept].mean()), 4) if kept.any() else None,
        },
        "truncated": round(float(answers["truncated"].mean()), 3),
    }


def ask_all(url: str, tickets: pd.DataFrame) -> pd.DataFrame:
    rows = []
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for ticket in tickets.itertuples():
            body: dict[str, Any] = {"text": ticket.body}
            if ticket.subject:
                body["subject"] = ticket.subject
            answer = client.post("/predict", json=body)
            answer.raise_for_status()
            data = answer.json()
            rows.append(
                {
                    "pred": data["label"],
                    "confidence": data["confidence"],
                    "needs_review": bool(data.get("needs_review", False)),
                    "truncated": bool(data.get("truncated", False)),
                }
            )
    return pd.concat([tickets.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, help="bundle dir to serve (a fresh server on 127.0.0.1)")
    parser.add_argument("--url", help="an already running server on this machine instead of --bundle")
    parser.add_argument("--tickets", type=Path, action="append", required=True)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not args.bundle and not args.url:
        parser.error("give --bundle or --url")
    if args.bundle and not (args.bundle / "manifest.json").is_file():
        parser.error(f"--bundle {args.bundle}: no manifest.json there (not a bundle written by export.onnx)")
    tickets = load_tickets(args.tickets)
    server: Server | None = None
    url = args.url
    try:
        if url is None:
            log = Path(tempfile.mkdtemp(prefix="served-quality-")) / "server.log"
            server = Server("bundle", REPO_ROOT, args.bundle, {}, log)
            server.start()
            url = server.base_url
            server.wait_until_ready(120.0)
        info = httpx.get(f"{url}/info", timeout=5).json()
        labels = list(info.get("labels") or sorted(set(tickets["label"])))
        started = time.perf_counter()
        answers = ask_all(url, tickets)
        seconds = time.perf_counter() - started
    finally:
        if server is not None:
            server.stop()
    report = {
        "model_version": info.get("model_version"),
        "tickets": [str(p) for p in args.tickets],
        "seconds": round(seconds, 1),
        **score(answers, labels),
    }
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
