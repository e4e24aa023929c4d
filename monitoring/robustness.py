"""Evaluate a serving bundle on shifted inputs and report the metric drop per shift.

    python -m monitoring.robustness --bundle bundles/<version> --data data/processed/<data>/test.parquet \
        [--shifts typos,uppercase,...] [--limit 1000] [--output reports/robustness] [--max-drop 5]

The bundle runs with onnxruntime + tokenizers as the server runs it (text recipe, truncation, padding from the
manifest). For every shift: accuracy, macro-F1, the drop in macro-F1 points against the unshifted inputs, the
share of predictions that changed, and the mean confidence. Exit codes: 0 done; 1 a shift dropped macro-F1 by
more than ``--max-drop`` points; 2 unreadable input or bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.bundle import BundleError, BundlePredictor, Scored
from monitoring.records import InputError
from monitoring.report import write_atomic, write_json
from monitoring.shifts import SHIFTS, Ticket

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_DROP, EXIT_INPUT = 0, 1, 2


@dataclass
class ShiftResult:
    shift: str
    description: str
    n: int
    accuracy: float
    macro_f1: float
    macro_f1_drop_points: float
    changed_predictions: float
    mean_confidence: float


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 over the labels present in either array (scikit-learn's default)."""
    labels = np.union1d(y_true, y_pred)
    scores = []
    for label in labels:
        tp = float(np.sum((y_pred == label) & (y_true == label)))
        fp = float(np.sum((y_pred == label) & (y_true != label)))
        fn = float(np.sum((y_pred != label) & (y_true == label)))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def load_data(path: Path, labels: Sequence[str], limit: int | None, seed: int) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(
            f"evaluation data {path} not found (a prepared split such as data/processed/<data>/test.parquet)"
        )
    try:
        data = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a broken file
        raise InputError(f"cannot read {path}: {exc}") from exc
    missing = {"body", "label"} - set(data.columns)
    if missing:
        raise InputError(f"{path} lacks column(s) {sorted(missing)}; expected the prepared split's columns")
    unknown = sorted(set(data["label"].astype(str)) - set(labels))
    if unknown:
        raise InputError(
            f"{path} has labels {unknown} that the bundle does not know (it predicts {list(labels)})"
        )
    if limit is not None and len(data) > limit:
        data = data.sample(n=limit, random_state=seed)
    data = data.reset_index(drop=True)
    data["subject"] = data["subject"].fillna("").astype(str) if "subject" in data else ""
    data["body"] = data["body"].fillna("").astype(str)
    data["language"] = data["language"].astype(str) if "language" in data else "unknown"
    return data


def _result(
    name: str, description: str, scored: Scored, y_true: np.ndarray, base_pred: np.ndarray | None
) -> ShiftResult:
    pred = scored.label_ids
    f1 = macro_f1(y_true, pred)
    base_f1 = f1 if base_pred is None else macro_f1(y_true, base_pred)
    return ShiftResult(
        shift=name,
        description=description,
        n=len(pred),
        accuracy=float(np.mean(pred == y_true)),
        macro_f1=f1,
        macro_f1_drop_points=round((base_f1 - f1) * 100, 4),
        changed_predictions=0.0 if base_pred is None else float(np.mean(pred != base_pred)),
        mean_confidence=float(np.mean(scored.confidence)),
    )


def evaluate(
    predictor: BundlePredictor, data: pd.DataFrame, shifts: Sequence[str], seed: int = 0
) -> tuple[list[ShiftResult], dict[str, float]]:
    """Score the unshifted data, then every shift; also returns the unshifted macro-F1 per language."""
    label_index = {label: i for i, label in enumerate(predictor.labels)}
    y_true = np.array([label_index[str(v)] for v in data["label"]])
    tickets: list[Ticket] = list(zip(data["subject"], data["body"], strict=True))
    languages = [str(v) for v in data["language"]]

    def score(batch: Sequence[Ticket]) -> Scored:
        return predictor.score([predictor.text(s, b) for s, b in batch])

    baseline = score(tickets)
    base_pred = baseline.label_ids
    results = [_result("none", "the inputs as they are", baseline, y_true, None)]
    for name in shifts:
        shift = SHIFTS[name]
        shifted = shift.apply(tickets, languages, random.Random(f"{seed}-{name}"))
        result = _result(name, shift.description, score(shifted), y_true, base_pred)
        logger.info(
            "%-13s macro-F1 %.4f (drop %.2f points)", name, result.macro_f1, result.macro_f1_drop_points
        )
        results.append(result)
    language_array = np.array(languages)
    per_language = {
        language: macro_f1(y_true[language_array == language], base_pred[language_array == language])
        for language in sorted(set(languages))
    }
    return results, per_language


def to_markdown(results: Sequence[ShiftResult], per_language: dict[str, float], bundle: str) -> str:
    lines = [
        f"# Robustness of {bundle}",
        "",
        "| shift | n | accuracy | macro-F1 | drop (points) | changed predictions | mean confidence |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.shift} | {r.n} | {r.accuracy:.4f} | {r.macro_f1:.4f} | {r.macro_f1_drop_points:.2f} "
            f"| {r.changed_predictions:.1%} | {r.mean_confidence:.3f} |"
        )
    lines += ["", "Unshifted macro-F1 per language:", "", "| language | macro-F1 |", "| --- | ---: |"]
    lines += [f"| {language} | {f1:.4f} |" for language, f1 in per_language.items()]
    lines += ["", "Shifts: " + "; ".join(f"{s.name}: {s.description}" for s in SHIFTS.values()), ""]
    return "\n".join(lines)


def _shift_list(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in SHIFTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown shift(s) {unknown}; choose from {', '.join(SHIFTS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.robustness", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--bundle", type=Path, required=True, help="a bundle directory written by export.onnx"
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared split (parquet/CSV) with labels")
    parser.add_argument("--shifts", type=_shift_list, default=list(SHIFTS), help="comma-separated subset")
    parser.add_argument("--limit", type=int, default=None, help="evaluate a seeded sample of N rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--max-drop", type=float, default=None, help="exit 1 if a shift drops more points")
    parser.add_argument("--output", type=Path, default=Path("reports/robustness"))
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        predictor = BundlePredictor(args.bundle, threads=args.threads)
        data = load_data(args.data, predictor.labels, args.limit, args.seed)
        if data.empty:
            raise InputError(f"{args.data} has no rows")
    except (BundleError, InputError) as exc:
        logger.error("%s", exc)
        return EXIT_INPUT
    results, per_language = evaluate(predictor, data, args.shifts, args.seed)
    markdown = to_markdown(results, per_language, predictor.model_version)
    payload = {
        "model_version": predictor.model_version,
        "data": str(args.data),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": args.seed,
        "results": [asdict(r) for r in results],
        "per_language_macro_f1": per_language,
    }
    write_json(args.output / "robustness.json", payload)
    write_atomic(args.output / "robustness.md", markdown)
    sys.stdout.write(markdown)
    if args.max_drop is not None:
        worst = max(results, key=lambda r: r.macro_f1_drop_points)
        if worst.macro_f1_drop_points > args.max_drop:
            logger.error(
                "shift %s dropped macro-F1 by %.2f points (limit %.2f)",
                worst.shift,
                worst.macro_f1_drop_points,
                args.max_drop,
            )
            return EXIT_DROP
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
