"""Duplicate removal across files, on normalised text (the 20k and 28k files share ~8,300 rows)."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

import pandas as pd

logger = logging.getLogger(__name__)

_SPACE_RE = re.compile(r"\s+")


def normalize_key(text: str) -> str:
    """The comparison form of a text: NFKC, case-folded, whitespace collapsed. Used for keys only."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


@dataclass(frozen=True)
class DedupeResult:
    frame: pd.DataFrame
    duplicates: int  # rows whose subject+body repeat an earlier row
    duplicate_body: int  # further rows whose body alone repeats an earlier row (different subject)
    label_conflicts: int  # removed duplicates whose label differed from the kept row


def dedupe(frame: pd.DataFrame) -> DedupeResult:
    """Keep the first row of each normalised subject+body, then of each normalised body.

    The second pass is what guarantees that no body can land in two splits.
    """
    body_key = frame["body"].map(normalize_key)
    pair_key = frame["subject"].map(normalize_key) + "\x00" + body_key
    first_label = frame.groupby(body_key, sort=False)["label"].transform("first")
    pair_dup = pair_key.duplicated(keep="first")
    body_dup = body_key.duplicated(keep="first") & ~pair_dup
    conflicts = int(((pair_dup | body_dup) & (frame["label"] != first_label)).sum())
    if conflicts:
        logger.warning("%d removed duplicates carried a different label than the row kept", conflicts)
    kept = frame[~(pair_dup | body_dup)].reset_index(drop=True)
    return DedupeResult(kept, int(pair_dup.sum()), int(body_dup.sum()), conflicts)
