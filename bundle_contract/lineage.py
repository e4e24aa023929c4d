"""Which prepared data a checkpoint was trained on (docs/contracts.md, section 3: ``recipe.json`` ``data``).

Evaluate and export score a checkpoint on its own prepared splits and refuse a data directory that no longer
holds them. The record names the split files' sha256 (``split_sha256``; checkpoints before it:
``stats_sha256``, the stats.json hash, which also moves when a new config key enters the data hash while the
splits stay byte-identical).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SPLIT_NAMES", "changed_data", "split_hashes"]

SPLIT_NAMES = ("train", "val", "test")


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def split_hashes(data_dir: Path) -> dict[str, str] | None:
    """sha256 of ``{train,val,test}.parquet`` in ``data_dir``; None when one is missing."""
    paths = {name: data_dir / f"{name}.parquet" for name in SPLIT_NAMES}
    if not all(path.is_file() for path in paths.values()):
        return None
    return {name: _sha256(path) for name, path in paths.items()}


def changed_data(record: Mapping[str, Any], data_dir: Path) -> str | None:
    """Why ``data_dir`` is not the data ``record`` (a recipe.json ``data`` object) names, or None if it is.

    Nothing recorded (a hand-made checkpoint) or nothing to compare (no stats.json) is not a change.
    """
    recorded = record.get("split_sha256")
    if isinstance(recorded, Mapping) and recorded:
        paths = {name: data_dir / f"{name}.parquet" for name in SPLIT_NAMES}
        differ = [
            name for name, path in paths.items() if not path.is_file() or _sha256(path) != recorded.get(name)
        ]
        return f"{', '.join(f'{name}.parquet' for name in differ)} sha256 differs" if differ else None
    expected = record.get("stats_sha256")
    stats = data_dir / "stats.json"
    if expected and stats.is_file() and _sha256(stats) != expected:
        return "stats.json sha256 differs"
    return None
