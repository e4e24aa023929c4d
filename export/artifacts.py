"""Weights & Biases model artifacts: pull a checkpoint to export, optionally log the bundle back.

Both fail fast with one clear message when W&B is offline, disabled or not logged in (this machine has no
route to W&B; the real calls are kept for CI/cloud runs that have one).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from export.errors import ExportError

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.wandb.ai"
CONNECT_TIMEOUT_S = 5.0


def parse_artifact_spec(spec: str) -> tuple[str, str]:
    """``[entity/][project/]name:alias`` -> (name, alias); the alias is required."""
    name, sep, alias = spec.rpartition(":")
    if not sep or not name or not alias or "/" in alias:
        raise ExportError(f"--wandb-artifact must look like NAME:ALIAS (e.g. model:best), got {spec!r}")
    return name, alias


def _preflight() -> None:
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in {"offline", "disabled", "dryrun"}:
        raise ExportError(
            f"W&B is {mode} (WANDB_MODE={mode}): cannot pull or log artifacts; "
            "unset WANDB_MODE on a machine with network access, or pass --checkpoint DIR"
        )
    base_url = os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)
    parsed = urlparse(base_url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ExportError(
            f"W&B is unreachable ({base_url}: {exc}); this looks like an offline machine: "
            "pass --checkpoint DIR instead of --wandb-artifact"
        ) from exc


def _qualified(name: str) -> str:
    """Prefix WANDB_ENTITY/WANDB_PROJECT where the name does not carry them."""
    parts = name.split("/")
    if len(parts) == 1 and os.environ.get("WANDB_PROJECT"):
        parts = [os.environ["WANDB_PROJECT"], *parts]
    if len(parts) == 2 and os.environ.get("WANDB_ENTITY"):
        parts = [os.environ["WANDB_ENTITY"], *parts]
    return "/".join(parts)


def _api() -> Any:
    import wandb

    try:
        return wandb.Api(timeout=30)
    except wandb.errors.UsageError as exc:
        raise ExportError(f"W&B: {exc} (set WANDB_API_KEY or run `wandb login`)") from exc


def pull_model_artifact(spec: str, dest: Path) -> Path:
    """Download the model artifact ``spec`` (NAME:ALIAS) into ``dest`` and return the checkpoint directory."""
    name, alias = parse_artifact_spec(spec)
    _preflight()
    api = _api()
    full = f"{_qualified(name)}:{alias}"
    try:
        artifact = api.artifact(full, type="model")
        root = Path(artifact.download(root=str(dest)))
    except (
        Exception
    ) as exc:  # wandb raises many types (CommError, ValueError, HTTP errors): one message for all
        raise ExportError(f"could not pull W&B artifact {full}: {exc}") from exc
    # The training stage logs checkpoints/best as the artifact's root; accept a nested best/ too.
    for candidate in (root, root / "best", root / "checkpoints" / "best"):
        if (candidate / "config.json").is_file():
            logger.info("pulled W&B artifact %s to %s", full, candidate)
            return candidate
    raise ExportError(f"W&B artifact {full} holds no checkpoint (no config.json under {root})")


def log_bundle_artifact(bundle_dir: Path, manifest: dict[str, Any], project: str | None = None) -> None:
    """Log the bundle as a W&B artifact of type ``bundle`` named after the model, aliased with its version."""
    _preflight()
    import wandb

    name = f"bundle-{manifest['model_name']}-{manifest['target']}"
    try:
        with wandb.init(
            project=project or os.environ.get("WANDB_PROJECT", "ticket-triage"), job_type="export"
        ) as run:
            artifact = wandb.Artifact(
                name, type="bundle", metadata={k: manifest[k] for k in ("model_version", "metrics")}
            )
            artifact.add_dir(str(bundle_dir))
            run.log_artifact(artifact, aliases=["latest", manifest["model_version"]])
    except Exception as exc:
        raise ExportError(
            f"could not log the bundle to W&B: {exc} (the bundle itself is written: {bundle_dir})"
        ) from exc
    logger.info("logged %s to W&B as %s", bundle_dir, name)
