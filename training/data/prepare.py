"""The data stage end to end: load -> validate/clean -> dedupe -> split -> write (docs/contracts.md, 2)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from training.data.config import PROJECT_ROOT, DataConfig
from training.data.dedupe import dedupe
from training.data.errors import DataValidationError
from training.data.io.loaders import read_table, resolve_paths
from training.data.recipe import build_text
from training.data.split import SPLITS, held_out_files, near_duplicate_groups, stratified_split
from training.data.validate import AUX_COLUMNS, CleanReport, clean_table
from training.utils import atomic_write, sha256_file, write_json_atomic

logger = logging.getLogger(__name__)

#: Columns of each split file, in this order.
SPLIT_COLUMNS = ["text", "subject", "body", "label", "label_id", "language", "source", *AUX_COLUMNS]
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
    """Prepare the splits described by the ``data`` config group and write them to ``cfg.output_dir``.

    Deterministic, and a no-op when ``output_dir`` already holds the splits of the same data hash (the
    sha256 of every input file plus the config keys that shape the splits): they are read back instead.
    """
    config = DataConfig.from_cfg(cfg)
    files = resolve_paths(
        config.paths, config.exclude, search_roots=[PROJECT_ROOT], recursive=config.recursive
    )
    file_stats: list[dict[str, Any]] = [{"path": str(path), "sha256": sha256_file(path)} for path in files]
    data_hash = _data_hash(config, file_stats)
    if (reused := _reuse(config.output_dir, data_hash)) is not None:
        logger.info("reusing the prepared splits in %s (data hash %s)", config.output_dir, data_hash[:12])
        return reused
    report = CleanReport()
    frames: list[pd.DataFrame] = []
    rows_in = 0
    for path, entry in zip(files, file_stats, strict=True):
        raw = read_table(path, unescape=config.unescape)
        rows_in += len(raw)
        entry["rows"] = len(raw)
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
    train_only = held_out_files(cleaned["source"], config.train_files).to_numpy()
    if config.train_files and bool((train_only & held_out_files(cleaned["source"], config.test_files)).any()):
        raise DataValidationError(
            f"a file matches both data.split.test_files {config.test_files} "
            f"and data.split.train_files {config.train_files}"
        )
    if config.train_files and not train_only.any():
        raise DataValidationError(
            f"data.split.train_files {config.train_files} match no input file of {[p.name for p in files]} "
            f"(data.exclude {config.exclude} skips files before this applies: e.g. data.exclude=[])"
        )
    # the other files first, alone: their dedupe, groups and split are exactly what they are without the
    # train-only files, so adding those never moves a val/test ticket
    deduped = dedupe(cleaned[~train_only].reset_index(drop=True))
    frame = _with_text(deduped.frame, config, report)
    report.dropped["duplicate_body"] += deduped.duplicate_body
    duplicates, label_conflicts = deduped.duplicates, deduped.label_conflicts
    if frame.empty:
        raise DataValidationError(f"no usable rows left in {[str(p) for p in files]} after cleaning")

    groups = near_duplicate_groups(frame["body"].tolist(), config.group_threshold)
    split_of = stratified_split(
        frame,
        config.val_fraction,
        config.test_fraction,
        config.seed,
        strata=("label", "language"),
        groups=groups,
        test_mask=held_out_files(frame["source"], config.test_files),
    )
    train_only_stats: dict[str, int] = {}
    if train_only.any():
        frame, split_of, groups, train_only_stats = _add_train_only(
            frame, split_of, groups, cleaned[train_only], config, report
        )
        duplicates += train_only_stats["duplicates"]
        label_conflicts += train_only_stats["label_conflicts"]
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
        "duplicates": duplicates,
        "label_conflicts": label_conflicts,
        "mapped": dict(sorted(report.mapped.items())),
        "split": {
            "val": config.val_fraction,
            "test": config.test_fraction,
            "strata": ["label", "language"],
            "group_threshold": config.group_threshold,
            "near_duplicate_groups": len(set(groups.tolist())),
            "rows_in_shared_groups": int(pd.Series(groups).duplicated(keep=False).sum()),
            "test_files": config.test_files,
            "train_files": config.train_files,
            **({"train_only": train_only_stats} if train_only_stats else {}),
        },
        "files": file_stats,
        "config_name": config.name,
        "data_hash": data_hash,
    }
    _write(config.output_dir, splits, stats)
    logger.info(
        "wrote %s: train %d, val %d, test %d (rows in %d, duplicates %d, dropped %s)",
        config.output_dir,
        *(len(splits[name]) for name in SPLITS),
        rows_in,
        duplicates,
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


def _with_text(frame: pd.DataFrame, config: DataConfig, report: CleanReport) -> pd.DataFrame:
    """``frame`` with the model's input ``text`` first (the text recipe), rows with an empty one dropped."""
    frame = frame.copy()
    pairs = zip(frame["subject"], frame["body"], strict=True)
    frame.insert(0, "text", [build_text(s, b, config.text_recipe) for s, b in pairs])
    empty_text = frame["text"] == ""
    report.dropped["empty_text"] += int(empty_text.sum())
    return frame[~empty_text].reset_index(drop=True)


def _add_train_only(
    frame: pd.DataFrame,
    split_of: pd.Series,
    groups: Any,
    extra: pd.DataFrame,
    config: DataConfig,
    report: CleanReport,
) -> tuple[pd.DataFrame, pd.Series, Any, dict[str, int]]:
    """Append the ``train_files`` rows to train, without copies of any other row and without a row that a
    chain of near-duplicates (cosine >= ``group_threshold``, as the split groups) links to a val/test ticket.
    """
    n = len(frame)
    # dedupe keeps the first row of a key: the other files' rows come first and all stay
    both = dedupe(pd.concat([frame.drop(columns="text"), extra], ignore_index=True))
    report.dropped["duplicate_body"] += both.duplicate_body
    added = _with_text(both.frame.iloc[n:].reset_index(drop=True), config, report)
    joint = near_duplicate_groups([*frame["body"], *added["body"]], config.group_threshold)
    scored = np.unique(joint[:n][(split_of != "train").to_numpy()])
    near = np.isin(joint[n:], scored)
    added = added[~near].reset_index(drop=True)
    stats = {
        "rows": len(added),
        "dropped_near_val_test": int(near.sum()),
        "duplicates": both.duplicates,
        "label_conflicts": both.label_conflicts,
    }
    logger.info(
        "train-only files %s: %d rows added to train (%d near a val/test ticket dropped, %d copies)",
        config.train_files,
        stats["rows"],
        stats["dropped_near_val_test"],
        stats["duplicates"],
    )
    combined = pd.concat([frame, added], ignore_index=True)
    split_all = pd.concat([split_of, pd.Series("train", index=range(n, len(combined)))])
    groups_all = np.concatenate(
        [np.asarray(groups), np.asarray(groups).max(initial=-1) + 1 + joint[n:][~near]]
    )
    return combined, split_all.astype(str), groups_all, stats


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


def _data_hash(config: DataConfig, file_stats: list[dict[str, Any]]) -> str:
    """What the splits depend on: the input files' contents and the config (not where they are written)."""
    keys = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("output_dir", "paths", "name")}
    payload = {"config": keys, "files": sorted(entry["sha256"] for entry in file_stats)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _reuse(output_dir: Path, data_hash: str) -> PreparedData | None:
    try:
        stats = json.loads((output_dir / STATS_FILE).read_text(encoding="utf-8"))
        return load_prepared(output_dir) if stats.get("data_hash") == data_hash else None
    except (OSError, ValueError, DataValidationError):
        return None


def _write(output_dir: Path, splits: dict[str, pd.DataFrame], stats: dict[str, Any]) -> None:
    """Write each file to a temp name beside it, then rename; stats.json goes last as completion marker."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stale = output_dir / STATS_FILE
    if stale.exists():
        stale.unlink()
    for name, frame in splits.items():
        atomic_write(output_dir / f"{name}.parquet", functools.partial(frame.to_parquet, index=False))
    write_json_atomic(output_dir / STATS_FILE, stats)
