"""Turn one raw file into the stage's canonical rows, or fail with a message naming file and problem."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from training.data.errors import DataValidationError

logger = logging.getLogger(__name__)

#: Side columns kept beside the target (queue, type: other targets, analysis); "" where a file lacks one.
AUX_COLUMNS = ["queue", "type"]
#: The canonical columns every cleaned frame has, in this order.
CANONICAL_COLUMNS = ["subject", "body", "label", "language", "source", *AUX_COLUMNS]


@dataclass
class CleanReport:
    """What cleaning did to the rows of one or more files."""

    dropped: Counter[str] = field(default_factory=Counter)
    mapped: Counter[str] = field(default_factory=Counter)


def clean_table(
    frame: pd.DataFrame,
    path: Path,
    target: str,
    labels: list[str] | None,
    label_map: dict[str, str],
    report: CleanReport,
) -> pd.DataFrame:
    """Check required columns and labels, map labels, drop empty bodies; return canonical columns only."""
    for column in ("body", target):
        if column not in frame.columns:
            raise DataValidationError(
                f"{path}: missing required column '{column}' (found: {', '.join(map(str, frame.columns))})"
            )
    out = pd.DataFrame(
        {
            "subject": frame["subject"] if "subject" in frame.columns else "",
            "body": frame["body"],
            "label": frame[target].str.strip(),
            "language": frame["language"].str.strip().str.lower()
            if "language" in frame.columns
            else "unknown",
        },
        index=frame.index,
    )
    out["language"] = out["language"].where(out["language"] != "", "unknown")
    out["source"] = path.name
    for column in AUX_COLUMNS:
        out[column] = frame[column].str.strip() if column in frame.columns else ""

    for raw, mapped in label_map.items():
        hits = int((out["label"] == raw).sum())
        if hits:
            report.mapped[f"{raw}->{mapped}"] += hits
            out.loc[out["label"] == raw, "label"] = mapped

    empty_body = out["body"].str.strip() == ""
    empty_label = ~empty_body & (out["label"] == "")
    if empty_body.any():
        logger.warning("%s: dropping %d rows with an empty body", path.name, int(empty_body.sum()))
    if empty_label.any():
        logger.warning("%s: dropping %d rows with an empty %s", path.name, int(empty_label.sum()), target)
    report.dropped["empty_body"] += int(empty_body.sum())
    report.dropped[f"empty_{target}"] += int(empty_label.sum())
    out = out[~empty_body & ~empty_label]

    if labels is not None:
        unknown = out.loc[~out["label"].isin(labels), "label"].value_counts()
        if len(unknown):
            listed = ", ".join(f"'{value}' ({count} rows)" for value, count in unknown.items())
            raise DataValidationError(
                f"{path}: unknown {target} value {listed}; expected one of {labels}. Map it with "
                f"data.label_map.{target}, exclude the file, or set data.labels=null to keep every value"
            )
    return out[CANONICAL_COLUMNS].reset_index(drop=True)
