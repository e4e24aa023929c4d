"""The ``data`` config group as a typed record, plus composing ``configs/prepare.yaml`` with Hydra."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from training.data.errors import DataValidationError
from training.data.recipe import normalize_recipe

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Where the Hydra configs live; override with TICKET_TRIAGE_CONFIG_DIR (e.g. for an installed package).
CONFIG_DIR_ENV = "TICKET_TRIAGE_CONFIG_DIR"
PRIORITY_LABELS = ["low", "medium", "high"]


def config_dir() -> Path:
    return Path(os.environ.get(CONFIG_DIR_ENV) or PROJECT_ROOT / "configs").resolve()


@dataclass(frozen=True)
class DataConfig:
    """The keys of ``cfg.data`` (see configs/data/*.yaml and docs/data.md)."""

    paths: list[str]
    output_dir: Path
    target: str = "priority"
    labels: list[str] | None = field(default_factory=lambda: list(PRIORITY_LABELS))
    label_map: dict[str, dict[str, str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    text_recipe: dict[str, Any] = field(default_factory=lambda: normalize_recipe(None))
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    #: near-duplicate groups (word TF-IDF cosine >= this) never span two splits; None = exact dedupe only
    group_threshold: float | None = 0.6
    #: file-name patterns whose rows all go to test (the cross-file yardstick); val comes from the rest
    test_files: list[str] = field(default_factory=list)
    #: file-name patterns whose rows only ever train: val/test come from the other files exactly as without
    #: them, and a row that duplicates or near-duplicates a val/test ticket is dropped (more training data)
    train_files: list[str] = field(default_factory=list)
    seed: int = 42
    unescape: bool = True
    recursive: bool = False
    name: str = "custom"

    @classmethod
    def from_cfg(cls, cfg: DictConfig | Mapping[str, Any]) -> DataConfig:
        raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        if not isinstance(raw, dict):
            raise DataValidationError("the data config must be a mapping (cfg.data)")
        paths = raw.get("paths")
        if isinstance(paths, str | Path):
            paths = [paths]
        if not paths:
            raise DataValidationError("data.paths is empty: give at least one file or directory")
        output_dir = raw.get("output_dir")
        if not output_dir:
            raise DataValidationError("data.output_dir must be set (e.g. data/processed)")
        split = raw.get("split") or {}
        val_fraction = float(split.get("val", 0.1))
        test_fraction = float(split.get("test", 0.1))
        if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
            raise DataValidationError(
                "data.split fractions must be >= 0 and sum below 1, "
                f"got val={val_fraction}, test={test_fraction}"
            )
        group_threshold = split.get("group_threshold", 0.6)
        if group_threshold is not None and not 0.0 < float(group_threshold) <= 1.0:
            raise DataValidationError(
                f"data.split.group_threshold must be in (0, 1] or null, got {group_threshold!r}"
            )
        test_files = split.get("test_files") or []
        if isinstance(test_files, str):
            test_files = [test_files]
        train_files = split.get("train_files") or []
        if isinstance(train_files, str):
            train_files = [train_files]
        if both := sorted(set(map(str, test_files)) & set(map(str, train_files))):
            raise DataValidationError(f"data.split.test_files and train_files share the patterns {both}")
        labels = raw.get("labels")
        if labels is not None:
            if isinstance(labels, str) or not isinstance(labels, Sequence):
                raise DataValidationError(f"data.labels must be a list or null, got {labels!r}")
            labels = [str(label) for label in labels]
            if len(set(labels)) != len(labels) or not labels:
                raise DataValidationError(f"data.labels must be distinct and non-empty, got {labels}")
        raw_map = raw.get("label_map") or {}
        if not isinstance(raw_map, Mapping) or not all(
            isinstance(mapping, Mapping) or mapping is None for mapping in raw_map.values()
        ):
            raise DataValidationError(
                "data.label_map must map a target to {raw value: label}, e.g. "
                "{priority: {very_low: low, critical: high}}"
            )
        label_map = {
            str(target): {str(k): str(v) for k, v in (mapping or {}).items()}
            for target, mapping in raw_map.items()
        }
        return cls(
            paths=[str(path) for path in paths],
            output_dir=Path(str(output_dir)),
            target=str(raw.get("target") or "priority"),
            labels=labels,
            label_map=label_map,
            exclude=[str(pattern) for pattern in (raw.get("exclude") or [])],
            text_recipe=normalize_recipe(raw.get("text_recipe")),
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            group_threshold=None if group_threshold is None else float(group_threshold),
            test_files=[str(pattern) for pattern in test_files],
            train_files=[str(pattern) for pattern in train_files],
            seed=int(raw.get("seed", 42)),
            unescape=bool(raw.get("unescape", True)),
            recursive=bool(raw.get("recursive", False)),
            name=str(raw.get("name") or "custom"),
        )


def compose(config_name: str = "prepare", overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with command-line style overrides (Hydra's compose API)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    # A caller (a test, a notebook) may have left Hydra initialised; compose would then refuse to start.
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="data"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))
