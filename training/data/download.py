"""Fetch the full dataset (Hugging Face hub or Kaggle) into ``data/raw``, which DVC tracks (data.dvc)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training.data.errors import DownloadError

logger = logging.getLogger(__name__)


def download(cfg: Mapping[str, Any]) -> Path:
    """Download per the ``download`` block of configs/prepare.yaml; raise DownloadError (one sentence)."""
    source = str(cfg.get("source", "hf"))
    dest = Path(str(cfg.get("dest", "data/raw")))
    if source == "hf":
        return _from_hf(
            str(cfg["hf_repo_id"]), str(cfg.get("hf_revision") or "main"), dest, cfg.get("patterns")
        )
    if source == "kaggle":
        return _from_kaggle(str(cfg["kaggle_dataset"]), dest)
    raise DownloadError(f"unknown download.source {source!r}: use hf or kaggle")


def _from_hf(repo_id: str, revision: str, dest: Path, patterns: Any) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    logger.info("downloading dataset %s@%s from the Hugging Face hub into %s", repo_id, revision, dest)
    try:
        snapshot_download(
            repo_id=repo_id,
            repo_type="dataset",
            revision=revision,
            local_dir=dest,
            allow_patterns=list(patterns) if patterns else None,
        )
    except OfflineModeIsEnabled as error:
        raise DownloadError(
            f"cannot download {repo_id}: HF_HUB_OFFLINE is set; unset it, or get the data with `dvc pull`"
        ) from error
    except (OSError, HfHubHTTPError, ValueError) as error:
        raise DownloadError(
            f"could not download {repo_id} from the Hugging Face hub ({type(error).__name__}); "
            "check the network "
            "connection (and HF_TOKEN if the dataset needs one), or get the data with `dvc pull`"
        ) from error
    _log_next_steps(dest)
    return dest


def _from_kaggle(dataset: str, dest: Path) -> Path:
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi  # optional: not a project dependency
    except ImportError as error:
        raise DownloadError(
            "the kaggle client is not installed: run `uv pip install kaggle`, or use download.source=hf"
        ) from error
    logger.info("downloading Kaggle dataset %s into %s", dataset, dest)
    try:
        api = KaggleApi()
        api.authenticate()
        dest.mkdir(parents=True, exist_ok=True)
        api.dataset_download_files(dataset, path=str(dest), unzip=True)
    except Exception as error:  # the client raises bare Exceptions for missing credentials and HTTP errors
        raise DownloadError(
            f"could not download {dataset} from Kaggle ({type(error).__name__}: {error}); check the network "
            "connection and ~/.kaggle/kaggle.json, or get the data with `dvc pull`"
        ) from error
    _log_next_steps(dest)
    return dest


def _log_next_steps(dest: Path) -> None:
    files = sorted(p.name for p in dest.iterdir() if p.is_file()) if dest.is_dir() else []
    logger.info("downloaded %d files into %s: %s", len(files), dest, ", ".join(files))
    logger.info("to version them: `dvc commit data.dvc && dvc push` (see docs/data.md)")
