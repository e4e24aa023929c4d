"""Read the two sides of a drift comparison into one shape.

Current window: the server's prediction log (JSON lines, docs/contracts.md section 5).
Reference: another prediction log (e.g. the first week after a deploy), a prepared split
(``train.parquet``, optionally scored by the bundle so predictions and confidences can be compared
too), or the split's ``stats.json`` (counts only: language mix and label distribution).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

NUMERIC_FEATURES = ("n_chars", "n_tokens", "confidence", "unk_ratio")
CATEGORICAL_FEATURES = ("language", "label", "truncated")
COLUMNS = ("ts", "model_version", *NUMERIC_FEATURES, *CATEGORICAL_FEATURES)


class InputError(ValueError):
    """A log or reference that cannot be read; the message says which file and what is wrong."""


@dataclass
class Observations:
    """One row per prediction (or reference ticket); absent features are NaN / None."""

    frame: pd.DataFrame
    source: str
    kind: str
    notes: list[str] = field(default_factory=list)
    counts_only: dict[str, dict[str, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        if self.counts_only:
            return max(sum(c.values()) for c in self.counts_only.values())
        return len(self.frame)

    def has(self, feature: str) -> bool:
        if feature in self.counts_only:
            return True
        return feature in self.frame and bool(self.frame[feature].notna().any())

    def counts(self, feature: str) -> dict[str, int]:
        if feature in self.counts_only:
            return dict(self.counts_only[feature])
        values = self.frame[feature].dropna().map(_category)
        return {str(k): int(v) for k, v in values.value_counts().items()}

    def values(self, feature: str) -> np.ndarray:
        return np.asarray(pd.to_numeric(self.frame[feature], errors="coerce").dropna(), dtype=float)


def _category(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def read_prediction_log(
    paths: Iterable[Path],
    model_version: str | None = None,
    since: datetime | None = None,
) -> Observations:
    """Read one or more JSONL prediction logs; malformed lines are skipped and counted, never fatal."""
    rows: list[dict[str, Any]] = []
    bad = 0
    sources: list[str] = []
    for path in paths:
        if not path.is_file():
            raise InputError(
                f"prediction log {path} not found (the server writes it when its prediction log is on)"
            )
        sources.append(str(path))
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    bad += 1
                    continue
                if isinstance(record, dict) and isinstance(record.get("jsonPayload"), dict):
                    record = record["jsonPayload"]  # a Cloud Logging entry (log sink export)
                if not isinstance(record, dict) or not isinstance(record.get("label"), str):
                    bad += 1
                    continue
                if model_version is not None and record.get("model_version") != model_version:
                    continue
                if since is not None:
                    ts = _parse_ts(record.get("ts"))
                    if ts is None or ts < since:
                        continue
                rows.append({col: record.get(col) for col in COLUMNS})
    notes = []
    if bad:
        notes.append(f"{bad} line(s) that are not predictions skipped")
        logger.warning("skipped %d line(s) that are not predictions in %s", bad, ", ".join(sources))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return Observations(frame=frame, source=", ".join(sources), kind="prediction_log", notes=notes)


def read_split(path: Path, limit: int | None = None, seed: int = 0) -> tuple[pd.DataFrame, Observations]:
    """A prepared split (parquet or CSV with the columns of docs/contracts.md section 2)."""
    if not path.is_file():
        raise InputError(f"reference split {path} not found (run `python -m training.data prepare` first)")
    try:
        data = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a broken file
        raise InputError(f"cannot read reference split {path}: {exc}") from exc
    if "text" not in data.columns:
        raise InputError(f"reference split {path} has no 'text' column (columns: {list(data.columns)})")
    if limit is not None and len(data) > limit:
        data = data.sample(n=limit, random_state=seed).reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "n_chars": data["text"].astype(str).str.len(),
            "language": data.get("language"),
            "label": data.get("label"),
        }
    )
    for col in COLUMNS:
        if col not in frame:
            frame[col] = None
    notes = ["label = true labels of the split (pass --bundle to compare predicted labels and confidence)"]
    return data, Observations(frame=frame, source=str(path), kind="split", notes=notes)


def read_stats(path: Path, split: str = "train") -> Observations:
    """``stats.json`` from the data stage: language mix and label distribution of one split."""
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
        per_label: dict[str, dict[str, int]] = stats["counts"][split]
    except FileNotFoundError as exc:
        raise InputError(f"reference stats {path} not found") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a stats.json with counts for split {split!r}: {exc}") from exc
    labels: dict[str, int] = {}
    languages: dict[str, int] = {}
    for label, by_language in per_label.items():
        for language, n in by_language.items():
            labels[label] = labels.get(label, 0) + int(n)
            languages[language] = languages.get(language, 0) + int(n)
    return Observations(
        frame=pd.DataFrame(columns=list(COLUMNS)),
        source=f"{path} [{split}]",
        kind="stats",
        notes=["stats.json holds counts only: text length, confidence and [UNK] rate are not compared"],
        counts_only={"label": labels, "language": languages},
    )
