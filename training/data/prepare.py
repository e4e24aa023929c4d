"""The data stage end to end: load -> validate/clean -> dedupe -> split -> write (docs/contracts.md, 2)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from training.data.config import PROJECT_ROOT, DataConfig
from training.data.dedupe import dedupe
from training.data.errors import DataValidationError
from training.data.io.loaders import read_table, resolve_paths
from training.data.recipe import build_text
from training.data.split import SPLITS, stratified_split
from training.data.validate import CleanReport, clean_table

logger = logging.getLogger(__name__)

#: Columns of each split file, in this order.
SPLIT_COLUMNS = ["text", "subject", "body", "label", "label_id", "language", "source"]
STATS_FILE = "stats.json"


@dataclass
class PreparedData:
    """The prepared splits and what describes them (stats.json)."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    labels: list[str]
    target: str
    text_recipe: dict[str, Any]
    stats: dict[str, Any]
    output_dir: Path

    def split(self, name: str) -> pd.DataFrame:
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        frame: pd.DataFrame = getattr(self, name)
        return frame


def prepare(cfg: DictConfig | Mapping[str, Any]) -> PreparedData:
    """Prepare the splits described by the ``data`` config group and write them to ``cfg.output_dir``."""
    config = DataConfig.from_cfg(cfg)
    files = resolve_paths(
        config.paths, config.exclude, search_roots=[PROJECT_ROOT], recursive=config.recursive
    )
    report = CleanReport()
    frames: list[pd.DataFrame] = []
    file_stats: list[dict[str, Any]] = []
    rows_in = 0
    for path in files:
        raw = read_table(path, unescape=config.unescape)
        rows_in += len(raw)
        file_stats.append({"path": str(path), "rows": len(raw), "sha256": _sha256(path)})
        frames.append(
            clean_table(
                raw,
                path,
                config.target,
                config.labels,
                config.label_map.get(config.target, {}),
                report,
            )
        )
        logger.info("read %s: %d rows", path, len(raw))
    cleaned = pd.concat(frames, ignore_index=True)
    deduped = dedupe(cleaned)
    report.dropped["duplicate_body"] += deduped.duplicate_body
    frame = deduped.frame
    if frame.empty:
        raise DataValidationError(f"no usable rows left in {[str(p) for p in files]} after cleaning")

    frame.insert(
        0,
        "text",
        [build_text(s, b, config.text_recipe) for s, b in zip(frame["subject"], frame["body"], strict=True)],
    )
    empty_text = frame["text"] == ""
    report.dropped["empty_text"] += int(empty_text.sum())
    frame = frame[~empty_text].reset_index(drop=True)

    split_of = stratified_split(
        frame, config.val_fraction, config.test_fraction, config.seed, strata=("label", "language")
    )
    labels = (
        config.labels
        if config.labels is not None
        else sorted(frame.loc[split_of == "train", "label"].unique())
    )
    label_index = {label: i for i, label in enumerate(labels)}
    frame["label_id"] = frame["label"].map(label_index).astype("int64")
    splits = {name: frame[split_of == name][SPLIT_COLUMNS].reset_index(drop=True) for name in SPLITS}

    stats: dict[str, Any] = {
        "target": config.target,
        "labels": labels,
        "text_recipe": config.text_recipe,
        "seed": config.seed,
        "counts": {name: _counts(split, labels) for name, split in splits.items()},
        "sizes": {name: len(split) for name, split in splits.items()},
        "rows_in": rows_in,
        "rows_out": sum(len(split) for split in splits.values()),
        "dropped": {key: report.dropped.get(key, 0) for key in sorted(report.dropped)},
        "duplicates": deduped.duplicates,
        "label_conflicts": deduped.label_conflicts,
        "mapped": dict(sorted(report.mapped.items())),
        "split": {"val": config.val_fraction, "test": config.test_fraction, "strata": ["label", "language"]},
        "files": file_stats,
        "config_name": config.name,
    }
    _write(config.output_dir, splits, stats)
    logger.info(
        "wrote %s: train %d, val %d, test %d (rows in %d, duplicates %d, dropped %s)",
        config.output_dir,
        *(len(splits[name]) for name in SPLITS),
        rows_in,
        deduped.duplicates,
        stats["dropped"],
    )
    return PreparedData(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        labels=labels,
        target=config.target,
        text_recipe=config.text_recipe,
        stats=stats,
        output_dir=config.output_dir,
    )


def load_prepared(output_dir: Path | str) -> PreparedData:
    """Read splits written by :func:`prepare` back (``stats.json``, written last, marks a complete set)."""
    directory = Path(output_dir)
    stats_path = directory / STATS_FILE
    if not stats_path.is_file():
        raise DataValidationError(
            f"{stats_path} not found: run `python -m training.data prepare data.output_dir={directory}` first"
        )
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    splits: dict[str, pd.DataFrame] = {}
    for name in SPLITS:
        path = directory / f"{name}.parquet"
        if not path.is_file():
            raise DataValidationError(f"{path} is missing: re-run `python -m training.data prepare`")
        frame = pd.read_parquet(path)
        missing = [column for column in SPLIT_COLUMNS if column not in frame.columns]
        if missing:
            raise DataValidationError(
                f"{path} lacks columns {missing}: re-run `python -m training.data prepare`"
            )
        splits[name] = frame
    return PreparedData(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        labels=list(stats["labels"]),
        target=str(stats["target"]),
        text_recipe=dict(stats["text_recipe"]),
        stats=stats,
        output_dir=directory,
    )


def _counts(frame: pd.DataFrame, labels: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {label: {} for label in labels}
    sizes = frame.groupby(["label", "language"]).size().sort_index()
    for key, n in sizes.items():
        pair: tuple[str, str] = key  # type: ignore[assignment]
        counts[str(pair[0])][str(pair[1])] = int(n)
    return counts


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write(output_dir: Path, splits: dict[str, pd.DataFrame], stats: dict[str, Any]) -> None:
    """Write each file to a temp name beside it, then rename; stats.json goes last as completion marker."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stale = output_dir / STATS_FILE
    if stale.exists():
        stale.unlink()
    for name, frame in splits.items():
        _atomic(output_dir / f"{name}.parquet", lambda tmp, frame=frame: frame.to_parquet(tmp, index=False))
    text = json.dumps(stats, indent=2, ensure_ascii=False) + "\n"
    _atomic(output_dir / STATS_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _atomic(target: Path, write: Any) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
