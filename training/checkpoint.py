"""Checkpoints (docs/contracts.md, section 3): ``best`` in Hugging Face format with labels/metrics/recipe
JSON; ``last/checkpoint-<step>`` as ``transformers.Trainer`` writes them (weights, optimizer, RNG states...).

``best`` is written into ``checkpoints/.best.tmp-*`` and renamed into place (the previous ``best`` is moved
aside first and deleted after; a crash between the two renames is repaired on the next start). A Trainer
checkpoint counts only once ``run_config.json`` (written after the Trainer's own files) is in it, so a kill -9
during a save resumes from the one before.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from training.errors import CheckpointError
from training.utils import sha256_file, write_json_atomic  # noqa: F401 - sha256_file: training.evaluate

BEST, LAST = "best", "last"
RUN_CONFIG = "run_config.json"
#: Keys a resumed run may change: they do not change what is computed.
RESUME_IGNORES = {
    "trainer.resume",
    "trainer.progress_bar",
    "trainer.profile",
    "trainer.num_workers",
    "trainer.num_threads",
    "evaluate",
    "baseline",
}


def recover(checkpoints_dir: Path) -> None:
    """Undo a crash between moving the old ``best`` aside and renaming the new one in; drop temp dirs."""
    best = checkpoints_dir / BEST
    for old in sorted(checkpoints_dir.glob(".best.old-*")):
        if not best.exists():
            old.replace(best)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in checkpoints_dir.glob(".best.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def save_best(checkpoints_dir: Path, model: Any, tokenizer: Any, **json_files: Mapping[str, Any]) -> Path:
    """Write ``checkpoints/best`` (model, fast tokenizer, ``<name>.json`` per keyword) atomically."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".best.tmp-", dir=checkpoints_dir))
    tmp.chmod(0o755)
    best, old = checkpoints_dir / BEST, checkpoints_dir / f".best.old-{tmp.name.rsplit('-', 1)[-1]}"
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for name, payload in json_files.items():
            write_json_atomic(tmp / f"{name}.json", dict(payload))
        if best.exists():
            best.replace(old)
        tmp.replace(best)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return best


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.rsplit("-", 1)[-1])


def _complete(last_dir: Path) -> list[Path]:
    return sorted((p.parent for p in last_dir.glob(f"checkpoint-*/{RUN_CONFIG}")), key=_step)


def find_resume_checkpoint(run_dir: Path, resume: bool | str | None) -> Path | None:
    """Where ``trainer.resume`` points: ``true`` = this run dir's newest complete Trainer checkpoint, else
    the newest sibling run's; a string = a run dir, a ``checkpoints/last`` dir or a ``checkpoint-<step>``.
    """
    if resume in (False, None) or str(resume).lower() in ("false", "0", "no"):
        return None
    if str(resume).lower() not in ("true", "1", "yes"):
        path = Path(str(resume))
        if (path / RUN_CONFIG).is_file():
            return path
        for last in (path / "checkpoints" / LAST, path / LAST, path):
            if found := _complete(last):
                return found[-1]
        raise CheckpointError(
            f"trainer.resume={resume}: no complete checkpoint-<step> with {RUN_CONFIG} there"
        )
    if own := _complete(run_dir / "checkpoints" / LAST):
        return own[-1]
    found = [p.parent for p in run_dir.parent.glob(f"*/checkpoints/{LAST}/checkpoint-*/{RUN_CONFIG}")]
    return max(found, key=lambda p: (p.parents[2].name, _step(p)), default=None)  # newest run, newest step


def check_resume_config(checkpoint: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint's ``run_config.json``; a :class:`CheckpointError` naming every key whose resolved value
    differs from ``config`` (a resumed optimizer and schedule would silently keep the old settings)."""
    try:
        saved: dict[str, Any] = json.loads((checkpoint / RUN_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot read {checkpoint / RUN_CONFIG} ({exc}): pick another checkpoint"
        ) from exc
    old, new = (pd.json_normalize(dict(c)).to_dict(orient="records")[0] for c in (saved["config"], config))
    differ = sorted(
        str(k) for k in old.keys() | new.keys() if k not in RESUME_IGNORES and old.get(k) != new.get(k)
    )
    if differ:
        changes = ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in differ)
        raise CheckpointError(
            f"cannot resume {checkpoint}: its run was configured differently in {changes}; "
            "resume with the same config, or start a fresh run (trainer.resume=false)"
        )
    return saved
