"""Find and validate a training checkpoint (docs/contracts.md section 3)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundle_contract.lineage import changed_data
from export.errors import CheckpointError

logger = logging.getLogger(__name__)

DEFAULT_RUNS_ROOT = Path("outputs/train")
REQUIRED_FILES = ("config.json", "tokenizer.json", "labels.json", "recipe.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
RECIPE_KEYS = ("text_recipe", "max_length", "model_name")


@dataclass(frozen=True)
class Checkpoint:
    """A validated ``checkpoints/best`` directory and the contract files read from it."""

    path: Path
    target: str
    labels: list[str]
    text_recipe: dict[str, Any]
    max_length: int
    model_name: str
    pretrained: str
    recipe: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None

    @property
    def data_dir(self) -> Path | None:
        """The prepared-data directory the checkpoint was trained on (``recipe.json`` ``data.output_dir``).

        An error when that directory now holds other splits (:func:`bundle_contract.lineage.changed_data`).
        """
        data = self.recipe.get("data") or {}
        out = data.get("output_dir")
        if out and (why := changed_data(data, Path(out))) is not None:
            raise CheckpointError(
                f"the prepared data in {out} changed since {self.path} was trained ({why}): re-prepare it "
                "with that run's data config, or pass --data DIR"
            )
        return Path(out) if out else None

    @property
    def stats_sha256(self) -> str | None:
        data = self.recipe.get("data") or {}
        value = data.get("stats_sha256")
        return str(value) if value else None


def find_latest_checkpoint(runs_root: Path = DEFAULT_RUNS_ROOT) -> Path:
    """The newest ``<runs_root>/*/checkpoints/best`` holding ``labels.json`` (run dir names sort by time)."""
    candidates = sorted(
        (p for p in runs_root.glob("*/checkpoints/best") if (p / "labels.json").is_file()),
        key=lambda p: p.parent.parent.name,
    )
    if not candidates:
        raise CheckpointError(
            f"no checkpoint found: no {runs_root}/*/checkpoints/best with labels.json "
            f"(cwd {Path.cwd()}); train one with `python -m training.run experiment=...` "
            "or pass --checkpoint DIR / --wandb-artifact NAME:ALIAS"
        )
    found = candidates[-1]
    logger.info("using the newest checkpoint: %s", found)
    return found


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"cannot read {path}: {exc}; re-run training or pick another checkpoint"
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def load_checkpoint(path: Path) -> Checkpoint:
    """Validate ``path`` against the checkpoint contract and read its labels/recipe/metrics.

    Raises :class:`CheckpointError` with one clear message when the directory is missing or incomplete.
    """
    if not path.exists():
        raise CheckpointError(
            f"checkpoint not found: {path} does not exist; pass --checkpoint DIR (a checkpoints/best)"
        )
    if not path.is_dir():
        raise CheckpointError(f"checkpoint must be a directory (a checkpoints/best), got a file: {path}")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise CheckpointError(
            f"not a valid checkpoint: {path} lacks {', '.join(missing)} "
            "(expected a Hugging Face checkpoints/best dir written by `python -m training.run`, "
            "with a fast tokenizer, see docs/contracts.md section 3)"
        )

    labels_doc = _read_json(path / "labels.json")
    recipe = _read_json(path / "recipe.json")
    config = _read_json(path / "config.json")
    labels = labels_doc.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise CheckpointError(f"{path / 'labels.json'} must hold a non-empty list of strings under 'labels'")
    lacking = [key for key in RECIPE_KEYS if key not in recipe]
    if lacking:
        raise CheckpointError(
            f"{path / 'recipe.json'} lacks {', '.join(lacking)} (docs/contracts.md section 3)"
        )
    text_recipe = recipe["text_recipe"]
    if not isinstance(text_recipe, dict) or not isinstance(text_recipe.get("fields"), list):
        raise CheckpointError(f"{path / 'recipe.json'}: text_recipe must be an object with a 'fields' list")

    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        config_labels = [str(id2label[k]) for k in sorted(id2label, key=int)]
        if config_labels != labels:
            raise CheckpointError(
                f"label order disagrees in {path}: labels.json {labels} vs config.json id2label "
                f"{config_labels}; the checkpoint is inconsistent, re-run training"
            )

    metrics_path = path / "metrics.json"
    metrics = _read_json(metrics_path) if metrics_path.is_file() else None
    return Checkpoint(
        path=path,
        target=str(labels_doc.get("target", "priority")),
        labels=list(labels),
        text_recipe=dict(text_recipe),
        max_length=int(recipe["max_length"]),
        model_name=str(recipe["model_name"]),
        pretrained=str(recipe.get("pretrained", "")),
        recipe=recipe,
        metrics=metrics,
    )
