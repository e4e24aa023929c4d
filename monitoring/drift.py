"""Compare the server's recent predictions with a reference and say whether the inputs or outputs drifted.

    python -m monitoring.drift --log predictions.jsonl --bundle bundles/<version> \
        [--reference data/processed/<data>/test.parquet] [--output reports/drift] [--since 2026-11-01T00:00Z]

``--log`` is required. The reference: a HELD-OUT split scored by ``--bundle`` (default: ``test.parquet`` in
the prepared-data dir the bundle was gated on, from its manifest; its ``stats.json`` data hash must match the
bundle's when the manifest records one). A training split is refused with a bundle: the model is more sure
of the rows it was trained on than of any unseen traffic, so "confidence fell" would fire from the first day.

Exit codes, for automation: 0 not drifted, 1 drifted, 2 unreadable input or bad arguments, 3 too few
predictions to decide (``--min-samples``).
"""

from __future__ import annotations

import argparse
import json
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
    add_chars_per_token,
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
    "chars_per_token": "characters per token (untruncated texts): falls when words are new to the tokenizer",
    "confidence": "top-1 probability: falls when the model meets inputs unlike its training data",
    "language": "language mix (the server's detector on both sides)",
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
        reference={
            "source": reference.source,
            "kind": reference.kind,
            "n": len(reference),
            "data_hash": reference.data_hash,
        },
        current={"source": current.source, "n": len(current), "model_versions": versions},
        thresholds=thresholds,
        notes=notes,
    )


def _manifest(bundle: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"bundle {bundle}: cannot read manifest.json ({exc})") from exc
    return manifest


def default_reference(bundle: Path) -> Path:
    """``test.parquet`` beside the validation split the bundle was gated on (manifest: validation_data)."""
    data_dir = (_manifest(bundle).get("validation_data") or {}).get("dir")
    candidate = Path(str(data_dir)) / "test.parquet" if data_dir else None
    if candidate is None or not candidate.is_file():
        raise InputError(
            f"no --reference given and the bundle's prepared data ({data_dir or 'not recorded'}) has no "
            "test.parquet here: prepare that data (python -m training.data prepare data=<name>) or pass "
            "--reference data/processed/<name>/test.parquet"
        )
    return candidate


def _check_held_out(path: Path, bundle: Path, other_data: bool = False) -> tuple[str | None, str | None]:
    """Refuse a training split; return its data hash, checked against the bundle's (a mismatch is refused,
    or with ``other_data`` returned as the report's note)."""
    if path.stem == "train":
        raise InputError(
            f"{path}: a training split scored by the bundle trained on it is more confident than any unseen "
            "traffic (a 'drift' from day one); use the held-out test.parquet of the same prepared data"
        )
    stats_path = path.parent / "stats.json"
    try:
        data_hash = json.loads(stats_path.read_text(encoding="utf-8")).get("data_hash")
    except (OSError, ValueError):
        data_hash = None
    validation = _manifest(bundle).get("validation_data") or {}
    expected = validation.get("data_hash")
    note = None
    if expected and data_hash and expected != data_hash:
        if not other_data:
            raise InputError(
                f"{path} comes from prepared data with hash {str(data_hash)[:12]}, the bundle was gated on "
                f"{str(expected)[:12]}: prepare the bundle's data (manifest: validation_data) for the "
                "reference, or pass --allow-other-data to compare against a different held-out set on purpose"
            )
        note = (
            f"reference data {str(data_hash)[:12]} is not the data the bundle was gated on "
            f"({str(expected)[:12]}): compared on purpose (--allow-other-data)"
        )
    return (str(data_hash) if data_hash else None), note


def load_reference(
    path: Path,
    bundle: Path | None = None,
    limit: int = 2000,
    split: str = "train",
    threads: int = 1,
    other_data: bool = False,
) -> Observations:
    """Pick the reader by file type; a split reference is scored by the bundle when one is given."""
    if path.suffix == ".jsonl":
        reference = read_prediction_log([path])
        reference.kind = "prediction_log"
        return reference
    if path.suffix == ".json":
        return read_stats(path, split=split)
    if path.suffix in {".parquet", ".csv"}:
        data_hash, note = _check_held_out(path, bundle, other_data) if bundle is not None else (None, None)
        data, reference = read_split(path, limit=limit)
        reference.data_hash = data_hash
        if bundle is not None:
            _score_split(data, reference, bundle, threads)  # resets the notes: ours go after it
            if data_hash is None:
                reference.notes.append(f"{path.parent / 'stats.json'} records no data hash: not checked")
            if note:
                reference.notes.append(note)
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
    add_chars_per_token(frame)
    reference.notes = [
        *[n for n in reference.notes if n.startswith("language")],
        f"reference predictions made with bundle {predictor.model_version} on held-out rows",
    ]


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
        "--log",
        type=Path,
        action="append",
        required=True,
        help="the window: the server's prediction log (JSONL, or a Cloud Logging export); repeatable",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        help="held-out split (test.parquet; default with --bundle: the bundle's own prepared data), "
        "stats.json, or a reference prediction log (.jsonl)",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        help="the deployed bundle: scores a split reference (labels, confidence, tokens) as the server does",
    )
    parser.add_argument(
        "--allow-other-data",
        action="store_true",
        help="accept a split reference from other prepared data than the bundle's (noted in the report)",
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
        if args.reference is None and args.bundle is None:
            raise InputError("pass --bundle (its held-out split is the reference) or --reference")
        reference_path = args.reference or default_reference(args.bundle)
        reference = load_reference(
            reference_path, args.bundle, args.reference_limit, args.split, args.threads, args.allow_other_data
        )
        if len(reference) == 0:
            raise InputError(f"reference {reference_path} holds no rows")
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
