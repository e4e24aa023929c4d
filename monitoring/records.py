"""Read the two sides of a drift comparison into one shape.

Current window: the server's prediction log (JSON lines, docs/contracts.md section 5).
Reference: another prediction log (e.g. the first week after a deploy), a prepared HELD-OUT split
(``test.parquet``, scored by the bundle so predictions and confidences can be compared too), or the split's
``stats.json`` (counts only: the label distribution).

Language: both sides use the server's own detector (:func:`server.language.guess_language`): the prediction
log carries its guess, and a split's rows are labelled with the same function on the same text, never with the
dataset's ``language`` column (wrong on some tickets; a detector error must be the same on both sides).
Derived on both sides: ``chars_per_token`` = n_chars / n_tokens on untruncated texts; it falls when the words
are unknown to the tokenizer (a new queue's vocabulary splits into more word pieces) even without ``[UNK]``.
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

NUMERIC_FEATURES = ("n_chars", "n_tokens", "chars_per_token", "confidence", "unk_ratio")
CATEGORICAL_FEATURES = ("language", "label", "truncated")
LOG_COLUMNS = ("ts", "model_version", "n_chars", "n_tokens", "confidence", "unk_ratio", *CATEGORICAL_FEATURES)
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
    data_hash: str | None = None  # a split reference: its prepared data's hash (stats.json)

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
                rows.append({col: record.get(col) for col in LOG_COLUMNS})
    notes = []
    if bad:
        notes.append(f"{bad} line(s) that are not predictions skipped")
        logger.warning("skipped %d line(s) that are not predictions in %s", bad, ", ".join(sources))
    frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    add_chars_per_token(frame)
    source = ", ".join(sources)
    return Observations(frame=frame[list(COLUMNS)], source=source, kind="prediction_log", notes=notes)


def add_chars_per_token(frame: pd.DataFrame) -> None:
    """``chars_per_token`` where both counts are known and the text was not truncated (else NaN)."""
    chars = pd.to_numeric(frame["n_chars"], errors="coerce")
    tokens = pd.to_numeric(frame["n_tokens"], errors="coerce")
    truncated = frame["truncated"].map(lambda v: v is True or v is np.True_)
    ratio = chars / tokens.where(tokens > 0)
    frame["chars_per_token"] = ratio.where(~truncated)


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
    from server.language import guess_language

    texts = data["text"].astype(str)
    frame = pd.DataFrame(
        {
            "n_chars": texts.str.len(),
            "language": [guess_language(t) for t in texts],
            "label": data.get("label"),
        }
    )
    for col in COLUMNS:
        if col not in frame:
            frame[col] = None
    notes = [
        "language = the server's detector on the split's text (as in the prediction log)",
        "label = true labels of the split (pass --bundle to compare predicted labels and confidence)",
    ]
    return data, Observations(frame=frame, source=str(path), kind="split", notes=notes)


def read_stats(path: Path, split: str = "train") -> Observations:
    """``stats.json`` from the data stage: the label distribution of one split. Its language counts come from
    the dataset's own column, not from the server's detector, so they are not compared."""
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
        per_label: dict[str, dict[str, int]] = stats["counts"][split]
    except FileNotFoundError as exc:
        raise InputError(f"reference stats {path} not found") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a stats.json with counts for split {split!r}: {exc}") from exc
    labels: dict[str, int] = {}
    for label, by_language in per_label.items():
        labels[label] = sum(int(n) for n in by_language.values())
    return Observations(
        frame=pd.DataFrame(columns=list(COLUMNS)),
        source=f"{path} [{split}]",
        kind="stats",
        notes=[
            "stats.json holds counts only: text length, confidence and [UNK] rate are not compared; nor is "
            "language (its counts are the dataset's labels, not the server's detector)"
        ],
        counts_only={"label": labels},
    )
