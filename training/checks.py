"""Cheap checks of the composed config, run before torch/transformers are imported (slow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.errors import ConfigError

#: ``model.name`` values ``training.models.load_model`` can build.
MODEL_NAMES = ("distilbert_multilingual", "minilm", "tiny")
#: ``model.pooling`` values (``training/pooling.py``)
POOLINGS = ("cls", "mean")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def check_model_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model.name '{name}': choose one of {', '.join(MODEL_NAMES)}")


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ConfigError(f"model.pooling must be one of {', '.join(POOLINGS)}, not '{pooling}'")
    return pooling


def check_config(cfg: Any) -> None:
    """Fail on the mistakes a user makes most (unknown model, missing data path): one clear line."""
    check_model_name(str(cfg.model.name))
    check_pooling(str(cfg.model.get("pooling") or "cls"))
    for raw in cfg.data.get("paths") or []:
        text = str(raw)
        if any(ch in text for ch in "*?["):
            continue  # a glob: the data stage reports what it matched
        # relative paths: working directory first, then the project root (as the data stage resolves them)
        if not Path(text).exists() and not (PROJECT_ROOT / text).exists():
            raise ConfigError(
                f"data path not found: {text} (cwd {Path.cwd()}); "
                "fix data.paths=[...] or run from the repo root"
            )
    trainer = cfg.trainer
    if int(trainer.batch_size) < 1 or int(trainer.max_epochs) < 1 or int(trainer.grad_accum_steps) < 1:
        raise ConfigError("trainer.batch_size, trainer.max_epochs and trainer.grad_accum_steps must be >= 1")
    if str(trainer.precision) not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"trainer.precision must be fp32, bf16 or fp16, got {trainer.precision!r}")
    if str(trainer.padding) not in ("dynamic", "max_length"):
        raise ConfigError(f"trainer.padding must be dynamic or max_length, got {trainer.padding!r}")
    if str(cfg.logger.name) not in ("wandb", "none"):
        raise ConfigError(f"unknown logger.name '{cfg.logger.name}': choose wandb or none")
