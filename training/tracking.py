"""Experiment tracking: ``logger=wandb`` starts the W&B run that the Trainer's ``WandbCallback`` logs into
and adds the confusion matrix, the summary and the best checkpoint as a model artifact. W&B never fails a
run: offline without ``WANDB_API_KEY`` or a reachable server, skipped (a warning) when it cannot start. A
resumed run continues the same W&B run (same id, ``resume="allow"``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.utils import reachable

log = logging.getLogger(__name__)


def resolve_mode(requested: str) -> str:
    """``auto`` -> ``online`` with an API key and a reachable server, else ``offline``."""
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if not os.environ.get("WANDB_API_KEY"):
        return "offline"
    return "online" if reachable(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")) else "offline"


def start_run(
    logger_cfg: Mapping[str, Any], run_dir: Path, config: Mapping[str, Any], run_id: str | None
) -> Any:
    """The W&B run (``None`` for ``logger=none``, mode ``disabled`` or a W&B that cannot start)."""
    mode = resolve_mode(str(logger_cfg.get("mode", "auto")))
    if logger_cfg.get("name") != "wandb" or mode == "disabled":
        return None
    try:
        import wandb

        run = wandb.init(
            project=logger_cfg.get("project"),
            entity=logger_cfg.get("entity"),
            group=logger_cfg.get("group"),
            tags=list(logger_cfg.get("tags") or []),
            name=logger_cfg.get("run_name") or run_dir.name,
            dir=str(run_dir),
            mode=mode,  # type: ignore[arg-type]  # checked by resolve_mode / the config
            config=dict(config),
            job_type="train",
            id=run_id,
            resume="allow",
            settings=wandb.Settings(silent=True, init_timeout=60),
        )
    except Exception as exc:  # tracking is best effort: never fail the training run
        log.warning("W&B could not start (%s): training continues without tracking", exc)
        return None
    log.info("W&B run %s in %s mode (%s)", run.id, mode, run_dir / "wandb")
    return run


def log_confusion(run: Any, y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> None:
    import wandb

    plot = wandb.plot.confusion_matrix(y_true=list(y_true), preds=list(y_pred), class_names=list(labels))
    run.log({"val/confusion_matrix": plot})


def finish_run(
    run: Any, logger_cfg: Mapping[str, Any], best: Path, name: str, summary: Mapping[str, Any]
) -> None:
    """Summary, the best checkpoint as a model artifact (alias ``best``, linked to ``logger.registry`` when
    online), then close the run. A failure (e.g. the server went away) is a warning, not a failed run."""
    import wandb

    try:
        run.summary.update(dict(summary))
        if logger_cfg.get("log_model", True) and best.is_dir():
            artifact = wandb.Artifact(name=name, type="model", metadata=dict(summary))
            artifact.add_dir(str(best))
            logged = run.log_artifact(artifact, aliases=["best", "latest"])
            if logger_cfg.get("registry") and run.settings.mode == "online":
                logged.wait()
                run.link_artifact(logged, str(logger_cfg["registry"]), aliases=["best"])
        run.finish()
    except Exception as exc:
        log.warning("W&B summary/artifact failed (ignored): %s", exc)
        run.finish(exit_code=1)
