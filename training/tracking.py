"""Experiment tracking. ``logger=wandb`` logs to Weights & Biases, ``logger=none`` logs nothing.

W&B must never fail a run: with no ``WANDB_API_KEY`` (or no route to the W&B server) it runs in offline mode
(sync later with ``wandb sync <run_dir>/wandb/offline-run-*``), and any error from it is logged as a warning
and then ignored.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)


class Tracker:
    """No-op tracker (``logger=none`` and every non-zero DDP rank); the interface the W&B tracker fills in."""

    mode = "disabled"

    def log_step(self, step: int, values: Mapping[str, float]) -> None:
        """Per-optimizer-step scalars (loss, learning rate, throughput)."""

    def log_epoch(self, step: int, epoch: int, metrics: Mapping[str, Any], labels: Sequence[str]) -> None:
        """Per-epoch validation metrics."""

    def log_confusion(
        self, key: str, y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
    ) -> None:
        """A confusion matrix."""

    def log_summary(self, values: Mapping[str, Any]) -> None:
        """Final figures of the run."""

    def log_best_checkpoint(self, path: Path, name: str, metadata: Mapping[str, Any]) -> None:
        """The best checkpoint as a model artifact with alias ``best``."""

    def finish(self, exit_code: int = 0) -> None:
        """Close the run."""


def _wandb_reachable(timeout: float = 3.0) -> bool:
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    try:
        with socket.create_connection((url.hostname or "api.wandb.ai", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_mode(requested: str) -> str:
    """``auto`` -> ``online`` with an API key and a reachable server, else ``offline``."""
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if not os.environ.get("WANDB_API_KEY"):
        return "offline"
    return "online" if _wandb_reachable() else "offline"


class WandbTracker(Tracker):
    def __init__(self, run: Any, mode: str, registry: str | None, log_model: bool) -> None:
        self.run = run
        self.mode = mode
        self.registry = registry
        self.log_model = log_model

    def _safe(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # tracking is best effort: never fail the training run
            log.warning("W&B %s failed (ignored): %s", what, exc)

    def log_step(self, step: int, values: Mapping[str, float]) -> None:
        self._safe("log", self.run.log, {f"train/{k}": v for k, v in values.items()}, step=step)

    def log_epoch(self, step: int, epoch: int, metrics: Mapping[str, Any], labels: Sequence[str]) -> None:
        flat: dict[str, Any] = {
            "epoch": epoch,
            "val/accuracy": metrics["accuracy"],
            "val/macro_f1": metrics["macro_f1"],
        }
        for label, values in metrics.get("per_class", {}).items():
            flat[f"val/recall_{label}"] = values["recall"]
            flat[f"val/f1_{label}"] = values["f1"]
        for lang, value in metrics.get("per_language_macro_f1", {}).items():
            flat[f"val/macro_f1_{lang}"] = value
        self._safe("log", self.run.log, flat, step=step)

    def log_confusion(
        self, key: str, y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
    ) -> None:
        import wandb  # only with logger=wandb

        def _log() -> None:
            plot = wandb.plot.confusion_matrix(
                y_true=list(y_true), preds=list(y_pred), class_names=list(labels)
            )
            self.run.log({key: plot})

        self._safe("confusion matrix", _log)

    def log_summary(self, values: Mapping[str, Any]) -> None:
        def _update() -> None:
            for key, value in values.items():
                self.run.summary[key] = value

        self._safe("summary", _update)

    def log_best_checkpoint(self, path: Path, name: str, metadata: Mapping[str, Any]) -> None:
        if not self.log_model:
            return
        import wandb

        def _log() -> None:
            artifact = wandb.Artifact(name=name, type="model", metadata=dict(metadata))
            artifact.add_dir(str(path))
            logged = self.run.log_artifact(artifact, aliases=["best", "latest"])
            if self.registry and self.mode == "online":
                logged.wait()
                self.run.link_artifact(logged, self.registry, aliases=["best"])
                log.info("linked the best checkpoint to W&B registry %s", self.registry)

        self._safe("model artifact", _log)

    def finish(self, exit_code: int = 0) -> None:
        self._safe("finish", self.run.finish, exit_code=exit_code)


def create_tracker(
    logger_cfg: Mapping[str, Any], run_dir: Path, config: Mapping[str, Any], is_main: bool
) -> Tracker:
    """The tracker named by ``logger.name`` (``wandb`` or ``none``); always a no-op on non-zero DDP ranks."""
    name = str(logger_cfg.get("name", "none"))
    if not is_main or name == "none":
        return Tracker()
    if name != "wandb":
        from training.errors import ConfigError

        raise ConfigError(f"unknown logger.name '{name}': choose wandb or none")
    mode = resolve_mode(str(logger_cfg.get("mode", "auto")))
    if mode == "disabled":
        return Tracker()
    try:
        import wandb

        run = wandb.init(
            project=logger_cfg.get("project"),
            entity=logger_cfg.get("entity"),
            group=logger_cfg.get("group"),
            tags=list(logger_cfg.get("tags") or []),
            name=logger_cfg.get("run_name") or run_dir.name,
            dir=str(run_dir),
            mode=mode,  # type: ignore[arg-type]  # validated by resolve_mode / the config
            config=dict(config),
            job_type="train",
            settings=wandb.Settings(silent=True, init_timeout=60),
        )
    except Exception as exc:
        log.warning("W&B could not start (%s): training continues without tracking", exc)
        return Tracker()
    log.info("W&B run %s in %s mode (%s)", run.id, mode, run_dir / "wandb")
    return WandbTracker(run, mode, logger_cfg.get("registry"), bool(logger_cfg.get("log_model", True)))
