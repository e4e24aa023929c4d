"""Checkpoints (docs/contracts.md, section 3): ``best`` in Hugging Face format, ``last`` with the full train
state.

Both are written atomically: ``best`` into ``checkpoints/.best.tmp-*`` then renamed into place (the previous
``best`` is moved aside first and deleted after, and a crash between the two renames is repaired on the next
start); ``last/state.pt`` is written to a temporary file and ``os.replace``d. A kill -9 at any moment leaves
either the old or the new checkpoint, never a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from training.errors import CheckpointError

log = logging.getLogger(__name__)

BEST = "best"
LAST = "last"
STATE_FILE = "state.pt"
# mkstemp/mkdtemp create private (0600/0700) entries; checkpoints are read by other users (containers, GCS
# sync).
_FILE_MODE = 0o644
_DIR_MODE = 0o755


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON next to ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, ensure_ascii=False, sort_keys=False)
            handle.write("\n")
        Path(tmp).chmod(_FILE_MODE)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def recover(checkpoints_dir: Path) -> None:
    """Undo a crash between moving the old ``best`` aside and renaming the new one in; drop temp dirs."""
    best = checkpoints_dir / BEST
    for old in sorted(checkpoints_dir.glob(".best.old-*")):
        if not best.exists():
            Path(old).replace(best)
            log.warning("restored %s from %s after an interrupted save", best, old.name)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in checkpoints_dir.glob(".best.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def save_best(
    checkpoints_dir: Path,
    model: Any,
    tokenizer: Any,
    *,
    labels_json: Mapping[str, Any],
    metrics_json: Mapping[str, Any],
    recipe_json: Mapping[str, Any],
) -> Path:
    """Write ``checkpoints/best`` (model, fast tokenizer, labels/metrics/recipe.json) atomically."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".best.tmp-", dir=checkpoints_dir))
    Path(tmp).chmod(_DIR_MODE)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for name, payload in (
            ("labels.json", labels_json),
            ("metrics.json", metrics_json),
            ("recipe.json", recipe_json),
        ):
            write_json_atomic(tmp / name, dict(payload))
        best = checkpoints_dir / BEST
        old = None
        if best.exists():
            old = checkpoints_dir / f".best.old-{tmp.name.rsplit('-', 1)[-1]}"
            Path(best).replace(old)
        Path(tmp).replace(best)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return checkpoints_dir / BEST


def save_last(checkpoints_dir: Path, state: Mapping[str, Any]) -> Path:
    """Write ``checkpoints/last/state.pt`` atomically (temp file + ``os.replace``)."""
    last = checkpoints_dir / LAST
    last.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=last)
    os.close(fd)
    try:
        torch.save(dict(state), tmp)
        Path(tmp).chmod(_FILE_MODE)
        Path(tmp).replace(last / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return last / STATE_FILE


def save_tokenizer_once(checkpoints_dir: Path, tokenizer: Any) -> Path:
    """Keep the run's tokenizer beside ``last`` so a resumed ``tiny`` run does not train a different
    vocabulary.
    """
    target = checkpoints_dir / LAST / "tokenizer"
    if (target / "tokenizer.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tokenizer.tmp-", dir=target.parent))
    Path(tmp).chmod(_DIR_MODE)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    Path(tmp).replace(target)
    return target


def load_last(state_path: Path) -> dict[str, Any]:
    if not state_path.is_file():
        raise CheckpointError(f"no resumable state at {state_path}")
    try:
        state: dict[str, Any] = torch.load(state_path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a torn or foreign file: say which one
        raise CheckpointError(
            f"could not read {state_path} ({exc}); delete it to start from scratch"
        ) from exc
    return state


def find_resume_state(run_dir: Path, resume: bool | str) -> Path | None:
    """Where ``trainer.resume`` points: ``true`` = this run dir, else the newest sibling run with a ``last``
    state; a string = a run dir, a ``checkpoints/last`` dir or a ``state.pt`` file.
    """
    if resume is False or resume is None:
        return None
    if isinstance(resume, str) and resume.lower() not in ("true", "1", "yes"):
        path = Path(resume)
        candidates = [
            path,
            path / STATE_FILE,
            path / LAST / STATE_FILE,
            path / "checkpoints" / LAST / STATE_FILE,
        ]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"trainer.resume={resume}: no {STATE_FILE} found there")
    own = run_dir / "checkpoints" / LAST / STATE_FILE
    if own.is_file():
        return own
    siblings = sorted(
        (p for p in run_dir.parent.glob(f"*/checkpoints/{LAST}/{STATE_FILE}") if p != own),
        key=lambda p: p.parents[2].name,
    )
    return siblings[-1] if siblings else None
