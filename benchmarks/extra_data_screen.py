"""Screen a data lever in seconds: does adding files to the *training* split help the TF-IDF baseline on the
same val/test rows? A cheap proxy before spending a 30-minute transformer run on the same data.

    uv run python -m benchmarks.extra_data_screen --prepared data/processed/tickets \
        --extra ../shared/data/tickets/dataset-tickets-german_normalized.csv \
        --extra ../shared/data/tickets/dataset-tickets-german_normalized_50_5_2.csv

The extra files are read with the data stage's loader and the prepared data's text recipe, their labels mapped
with the data config's ``label_map`` (very_low -> low, critical -> high), exact copies dropped, and each extra
ticket in a near-duplicate group (the split's own grouping, ``--near-dup`` cosine) with a val or test ticket
removed, so nothing leaks into the scored rows; another label (e.g. ``urgent``) drops the ticket.
Prints macro-F1 overall and per language on val and test, with and without the extra rows, as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bundle_contract import build_text
from quality.baseline import run_baseline


def extra_rows(
    paths: Sequence[Path], recipe: Any, labels: Sequence[str], scored: pd.Series, near_dup: float
) -> pd.DataFrame:
    """text, label_id of the extra files' tickets, without exact copies and near-duplicates of ``scored``."""
    from training.data.config import compose
    from training.data.io.loaders import read_table
    from training.data.split import near_duplicate_groups

    label_map = dict(compose("prepare").data.label_map.get("priority") or {})
    frames = []
    for path in paths:
        table = read_table(path).fillna("")
        pairs = zip(table["subject"].astype(str), table["body"].astype(str), strict=True)
        texts = [build_text(subject, body, recipe) for subject, body in pairs]
        priority = table["priority"].astype(str).str.strip().replace(label_map)  # as the data stage maps it
        frames.append(pd.DataFrame({"text": texts, "label": priority}))
    extra = pd.concat(frames, ignore_index=True).drop_duplicates("text")
    extra = extra[extra["label"].isin(labels) & (extra["text"].str.len() > 0)]
    groups = near_duplicate_groups([*extra["text"], *scored], near_dup)
    extra = extra[~np.isin(groups[: len(extra)], groups[len(extra) :])]
    return extra.assign(label_id=extra["label"].map({label: i for i, label in enumerate(labels)}))


def screen(
    prepared_dir: Path, extra_paths: Sequence[Path], near_dup: float = 0.6, seed: int = 42
) -> dict[str, Any]:
    from training.data import load_prepared

    prepared = load_prepared(prepared_dir)
    labels = list(prepared.labels)
    splits = {s: getattr(prepared, s) for s in ("val", "test")}
    scored = pd.concat([f["text"] for f in splits.values()])
    extra = extra_rows(extra_paths, prepared.text_recipe, labels, scored, near_dup)
    eval_sets = {
        s: (f["text"].tolist(), f["label_id"].tolist(), f["language"].tolist()) for s, f in splits.items()
    }
    train_sets = {
        "train": (prepared.train["text"].tolist(), prepared.train["label_id"].tolist()),
        "train+extra": (
            prepared.train["text"].tolist() + extra["text"].tolist(),
            prepared.train["label_id"].tolist() + extra["label_id"].tolist(),
        ),
    }
    out: dict[str, Any] = {"extra_rows": len(extra), "extra_labels": extra["label"].value_counts().to_dict()}
    for name, (texts, label_ids) in train_sets.items():
        result = run_baseline(texts, label_ids, eval_sets, labels, seed=seed)
        out[name] = {
            "n_train": len(texts),
            **{
                split: {
                    "macro_f1": round(m["macro_f1"], 4),
                    "per_language": {k: round(v, 4) for k, v in m["per_language_macro_f1"].items()},
                }
                for split, m in result.metrics.items()
            },
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.extra_data_screen", description=__doc__)
    parser.add_argument("--prepared", type=Path, required=True, help="a prepared-data dir (training.data)")
    parser.add_argument(
        "--extra", type=Path, action="append", required=True, help="a ticket file to add to train"
    )
    parser.add_argument("--near-dup", type=float, default=0.6, help="as data.split.group_threshold")
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(screen(args.prepared, args.extra, args.near_dup), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
