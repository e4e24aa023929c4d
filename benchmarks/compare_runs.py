"""Compare training runs on the same prepared split: macro-F1, recall, calibration, per language, and a
paired bootstrap of each run against the first (the figures of docs/quality.md and docs/training.md's levers).

    uv run python -m benchmarks.compare_runs outputs/train/<reference> outputs/train/<lever> [...]

Each run directory holds what ``training.run`` writes after training: ``metrics/report.json`` and the saved
``metrics/{val,test}_logits.npy`` of its best checkpoint. The labels and languages come from the prepared data
the report names (``data.output_dir``; ``--data DIR`` overrides it); every run must have been scored on the
same rows. Temperature is fitted on val and applied to test, as export does (no bias: export's default).
Prints a markdown table and writes it with the raw JSON to ``--out`` (``outputs/benchmarks/compare_runs``).
A paired interval pairs the runs on the same bootstrap resamples of the test tickets, so only tickets where
the two runs disagree move it; it says nothing about the noise of *training* (another seed), which only more
runs measure: the table gives each group's mean when ``--group`` names groups.
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

from export.verify import paired_bootstrap_f1_drop
from quality.calibration import calibration_report, fit_calibration
from quality.metrics import classification_metrics

SPLITS = ("val", "test")


def load_run(run: Path) -> dict[str, Any]:
    """The report and the saved val/test logits of one run directory."""
    metrics = run / "metrics"
    report_path = metrics / "report.json"
    if not report_path.is_file():
        raise SystemExit(
            f"error: {report_path} not found: is {run} a finished training run (evaluate: true)?"
        )
    report = json.loads(report_path.read_text(encoding="utf-8"))
    logits = {}
    for split in SPLITS:
        path = metrics / f"{split}_logits.npy"
        if not path.is_file():
            raise SystemExit(f"error: {path} not found (a run from before the logits were saved?)")
        logits[split] = np.load(path).astype(np.float64)
    return {"run": str(run), "report": report, "logits": logits}


def load_truth(data_dir: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for split in SPLITS:
        path = data_dir / f"{split}.parquet"
        if not path.is_file():
            raise SystemExit(
                f"error: {path} not found: prepare the data the runs were trained on, or pass --data"
            )
        frames[split] = pd.read_parquet(path, columns=["label_id", "language"])
    return frames


def summarise(
    run: dict[str, Any], truth: dict[str, pd.DataFrame], labels: Sequence[str], target_accuracy: float
) -> dict[str, Any]:
    """F1, recall, ECE before/after a val-fitted temperature, coverage at the target accuracy, languages."""
    out: dict[str, Any] = {"run": run["run"]}
    for split in SPLITS:
        z, frame = run["logits"][split], truth[split]
        if len(z) != len(frame):
            raise SystemExit(
                f"error: {run['run']} has {len(z)} {split} logits, the data {len(frame)} rows: "
                "not the same split"
            )
        m = classification_metrics(
            frame["label_id"].to_numpy(), z.argmax(axis=1), labels, frame["language"].tolist()
        )
        out[split] = {
            "macro_f1": m["macro_f1"],
            "accuracy": m["accuracy"],
            "recall": {k: v["recall"] for k, v in m["per_class"].items()},
            "per_language_macro_f1": m["per_language_macro_f1"],
        }
    # the export's calibration (temperature only, its default), fitted on val and reported on test
    fitted = fit_calibration(
        run["logits"]["val"],
        truth["val"]["label_id"].to_numpy(),
        tune_bias=False,
        target_accuracy=target_accuracy,
    )
    test = calibration_report(run["logits"]["test"], truth["test"]["label_id"].to_numpy(), fitted)
    out["calibration"] = {
        "temperature": fitted.temperature,
        "test_ece_raw": test["raw_ece"],
        "test_ece_calibrated": test["calibrated_ece"],
        f"test_coverage_at_{target_accuracy:g}": test[
            f"calibrated_coverage_at_{round(target_accuracy * 100)}"
        ],
    }
    baseline = run["report"].get("baseline", {}).get("test", {})
    out["baseline_test_macro_f1"] = baseline.get("macro_f1")
    return out


def paired(
    reference: dict[str, Any], other: dict[str, Any], y: np.ndarray, n_labels: int, resamples: int, seed: int
) -> dict[str, float]:
    """Test macro-F1 of ``other`` minus ``reference`` (points), with a 95% paired bootstrap interval."""
    diffs = paired_bootstrap_f1_drop(
        y,
        other["logits"]["test"].argmax(axis=1),
        reference["logits"]["test"].argmax(axis=1),
        n_labels,
        resamples,
        seed,
    )
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"mean": float(diffs.mean()), "low": float(low), "high": float(high)}


def markdown(rows: list[dict[str, Any]], groups: dict[str, list[float]], target_accuracy: float) -> str:
    cov = f"test_coverage_at_{target_accuracy:g}"
    lines = [
        f"| run | val F1 | test F1 | vs first (paired 95%) | recall low / medium / high | ECE raw -> T (T) "
        f"| coverage at {target_accuracy:.0%} | test per language |",
        "|---|---:|---:|---|---|---|---:|---|",
    ]
    for row in rows:
        rec = row["test"]["recall"]
        cal = row["calibration"]
        vs = row.get("vs_first")
        vs_text = f"{vs['mean']:+.1f} [{vs['low']:+.1f}, {vs['high']:+.1f}]" if vs else ""
        langs = " ".join(f"{k} {v:.2f}" for k, v in row["test"]["per_language_macro_f1"].items())
        lines.append(
            f"| {row['name']} | {row['val']['macro_f1']:.3f} | {row['test']['macro_f1']:.3f} | {vs_text} "
            f"| {' / '.join(f'{v:.2f}' for v in rec.values())} "
            f"| {cal['test_ece_raw']:.3f} -> {cal['test_ece_calibrated']:.3f} ({cal['temperature']:.2f}) "
            f"| {cal[cov]:.3f} | {langs} |"
        )
    baselines = {row["baseline_test_macro_f1"] for row in rows if row["baseline_test_macro_f1"] is not None}
    if len(baselines) == 1:
        lines.append(f"\nTF-IDF baseline on the same test rows: {baselines.pop():.4f}")
    for name, values in groups.items():
        lines.append(
            f"\ngroup {name}: n={len(values)}, test macro-F1 mean {np.mean(values):.4f}, "
            f"spread {max(values) - min(values):.4f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs", nargs="+", type=Path, help="training run directories; the first is the reference"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="prepared data dir (default: the first report's)"
    )
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME=RUN[,RUN...]",
        help="name a group of the runs (e.g. seeds of one recipe) to report its mean and spread",
    )
    parser.add_argument("--target-accuracy", type=float, default=0.70)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks/compare_runs"))
    args = parser.parse_args(argv)

    runs = [load_run(r) for r in args.runs]
    data_dir = args.data or Path(runs[0]["report"]["data"]["output_dir"])
    truth = load_truth(data_dir)
    labels = list(runs[0]["report"]["labels"])
    y_test = truth["test"]["label_id"].to_numpy()
    rows = []
    for i, run in enumerate(runs):
        row = {"name": Path(run["run"]).name, **summarise(run, truth, labels, args.target_accuracy)}
        if i > 0:
            row["vs_first"] = paired(runs[0], run, y_test, len(labels), args.resamples, args.seed)
        rows.append(row)
    by_name = {row["name"]: row["test"]["macro_f1"] for row in rows}
    groups: dict[str, list[float]] = {}
    for spec in args.group:
        name, _, members = spec.partition("=")
        missing = [m for m in members.split(",") if Path(m).name not in by_name]
        if not name or not members or missing:
            raise SystemExit(
                f"error: --group {spec!r}: expected NAME=RUN[,RUN...] of the runs given ({missing})"
            )
        groups[name] = [by_name[Path(m).name] for m in members.split(",")]
    table = markdown(rows, groups, args.target_accuracy)
    print(table)
    result = {"data": str(data_dir), "rows": rows, "groups": groups, "markdown": table}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare_runs.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (args.out / "compare_runs.md").write_text(table + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
