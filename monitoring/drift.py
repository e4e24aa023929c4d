"""Compare the server's recent predictions with a reference and say whether the inputs or outputs drifted.

    python -m monitoring.drift --log predictions.jsonl --reference data/processed/train.parquet \
        [--bundle bundles/<version>] [--output reports/drift] [--since 2026-11-01T00:00:00Z]

Exit codes, for automation: 0 not drifted, 1 drifted, 2 unreadable input or bad arguments, 3 too few
predictions to decide (``--min-samples``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitoring.records import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    InputError,
    Observations,
    read_prediction_log,
    read_split,
    read_stats,
)
from monitoring.report import render_html, write_atomic, write_json
from monitoring.stats import FeatureDrift, Thresholds, compare_categorical, compare_numeric
from server.bundle import BundleError

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_DRIFT, EXIT_INPUT, EXIT_INSUFFICIENT = 0, 1, 2, 3

_NOTES = {
    "n_chars": "characters of the model input text (subject + body by the bundle's recipe)",
    "n_tokens": "tokens after truncation",
    "unk_ratio": "share of word pieces that are the unknown token: rises with unseen scripts or vocabulary",
    "confidence": "top-1 probability: falls when the model meets inputs unlike its training data",
    "language": "language mix",
    "label": "predicted priority",
    "truncated": "share of texts cut at the model's max length",
}


@dataclass
class DriftReport:
    verdict: str
    features: list[FeatureDrift]
    reference: dict[str, Any]
    current: dict[str, Any]
    thresholds: Thresholds
    notes: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "drifted": self.verdict == "drifted",
            "drifted_features": self.drifted_features,
            "created_at": self.created_at,
            "thresholds": {
                "alpha": self.thresholds.alpha,
                "psi": self.thresholds.psi,
                "numeric_bins": self.thresholds.numeric_bins,
            },
            "reference": self.reference,
            "current": self.current,
            "features": [f.to_dict() for f in self.features],
            "notes": self.notes,
        }


def compare(
    reference: Observations,
    current: Observations,
    thresholds: Thresholds | None = None,
    min_samples: int = 50,
) -> DriftReport:
    """Test every feature that both sides carry; the verdict is 'drifted' when any feature drifted."""
    thresholds = thresholds or Thresholds()
    notes = [*reference.notes, *current.notes]
    features: list[FeatureDrift] = []
    for name in (*CATEGORICAL_FEATURES, *NUMERIC_FEATURES) if len(current) else ():
        if not (reference.has(name) and current.has(name)):
            if current.has(name) or reference.has(name):
                side = "reference" if not reference.has(name) else "current window"
                notes.append(f"{name}: not compared (absent from the {side})")
            continue
        if name in CATEGORICAL_FEATURES:
            features.append(
                compare_categorical(
                    name, reference.counts(name), current.counts(name), thresholds, _NOTES[name]
                )
            )
        else:
            features.append(
                compare_numeric(name, reference.values(name), current.values(name), thresholds, _NOTES[name])
            )
    versions = sorted({str(v) for v in current.frame["model_version"].dropna()})
    if len(current) < min_samples:
        verdict = "insufficient_data"
        notes.append(
            f"only {len(current)} predictions in the window; at least {min_samples} are needed to decide"
        )
    else:
        verdict = "drifted" if any(f.drifted for f in features) else "not_drifted"
    return DriftReport(
        verdict=verdict,
        features=features,
        reference={"source": reference.source, "kind": reference.kind, "n": len(reference)},
        current={"source": current.source, "n": len(current), "model_versions": versions},
        thresholds=thresholds,
        notes=notes,
    )


def load_reference(
    path: Path,
    bundle: Path | None = None,
    limit: int = 2000,
    split: str = "train",
    threads: int = 1,
) -> Observations:
    """Pick the reader by file type; a split reference is scored by the bundle when one is given."""
    if path.suffix == ".jsonl":
        reference = read_prediction_log([path])
        reference.kind = "prediction_log"
        return reference
    if path.suffix == ".json":
        return read_stats(path, split=split)
    if path.suffix in {".parquet", ".csv"}:
        data, reference = read_split(path, limit=limit)
        if bundle is not None:
            _score_split(data, reference, bundle, threads)
        return reference
    raise InputError(
        f"reference {path}: expected .jsonl (prediction log), .json (stats.json) or .parquet/.csv (split)"
    )


def _score_split(data: Any, reference: Observations, bundle: Path, threads: int) -> None:
    from monitoring.bundle import BundlePredictor  # loads onnxruntime: only when a bundle is given

    predictor = BundlePredictor(bundle, threads=threads)
    subjects = data["subject"] if "subject" in data else [""] * len(data)
    bodies = data["body"] if "body" in data else data["text"]
    texts = [predictor.text(s, b) for s, b in zip(subjects, bodies, strict=True)]
    logger.info("scoring %d reference texts with bundle %s", len(texts), predictor.model_version)
    scored = predictor.score(texts)
    frame = reference.frame
    frame["n_chars"] = [len(t) for t in texts]
    frame["label"] = [predictor.labels[i] for i in scored.label_ids]
    frame["confidence"] = scored.confidence
    frame["n_tokens"] = scored.n_tokens
    frame["truncated"] = scored.truncated
    frame["unk_ratio"] = scored.unk_ratio
    frame["model_version"] = predictor.model_version
    reference.notes = [f"reference predictions made with bundle {predictor.model_version}"]


def format_summary(report: DriftReport) -> str:
    ref_n, cur_n = report.reference["n"], report.current["n"]
    lines = [f"drift verdict: {report.verdict} (reference n={ref_n}, current n={cur_n})"]
    for f in report.features:
        flag = "DRIFT " if f.drifted else "stable"
        lines.append(f"  {flag} {f.name:<11} {f.test:<4} p={f.p_value:.3g} psi={f.psi:.3f}")
    lines.extend(f"  note: {n}" for n in report.notes)
    return "\n".join(lines) + "\n"


def write_report(report: DriftReport, output: Path) -> tuple[Path, Path]:
    payload = report.to_dict()
    json_path, html_path = output / "drift.json", output / "drift.html"
    write_json(json_path, payload)
    write_atomic(html_path, render_html(payload))
    return json_path, html_path


def _parse_since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--since {value!r} is not an ISO date/time such as 2026-11-01T00:00:00Z"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monitoring.drift", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--log", type=Path, action="append", required=True, help="prediction log (JSONL); repeatable"
    )
    parser.add_argument(
        "--reference",
        type=Path,
        required=True,
        help="train.parquet (prepared split), stats.json, or a reference prediction log (.jsonl)",
    )
    parser.add_argument(
        "--bundle", type=Path, help="score a split reference with this bundle (labels, confidence)"
    )
    parser.add_argument("--reference-limit", type=int, default=2000, help="sample at most N reference rows")
    parser.add_argument("--split", default="train", help="which split of stats.json to use")
    parser.add_argument("--model-version", help="only compare log lines of this model version")
    parser.add_argument("--since", type=_parse_since, help="only log lines at or after this ISO time")
    parser.add_argument("--alpha", type=float, default=0.01, help="significance level of each test")
    parser.add_argument("--psi", type=float, default=0.2, help="PSI at or above which a shift counts")
    parser.add_argument("--min-samples", type=int, default=50, help="fewer predictions than this: exit 3")
    parser.add_argument(
        "--output", type=Path, default=Path("reports/drift"), help="directory for drift.{json,html}"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="ONNX Runtime threads when scoring the reference"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        thresholds = Thresholds(alpha=args.alpha, psi=args.psi)
        current = read_prediction_log(args.log, model_version=args.model_version, since=args.since)
        reference = load_reference(
            args.reference, args.bundle, args.reference_limit, args.split, args.threads
        )
        if len(reference) == 0:
            raise InputError(f"reference {args.reference} holds no rows")
        report = compare(reference, current, thresholds, min_samples=args.min_samples)
    except (InputError, ValueError, BundleError) as exc:
        logger.error("%s", exc)
        return EXIT_INPUT
    json_path, html_path = write_report(report, args.output)
    sys.stdout.write(format_summary(report))
    logger.info("report written to %s and %s", json_path, html_path)
    if report.verdict == "insufficient_data":
        return EXIT_INSUFFICIENT
    return EXIT_DRIFT if report.verdict == "drifted" else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
