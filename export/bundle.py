"""The serving bundle (docs/contracts.md section 4): the writer side (manifest writer, staging dir, atomic
publish) and ``verify_bundle``, the export's check of a written bundle.

The reader and its rules live in the torch-free :mod:`bundle_contract`, shared with the server and
monitoring: ``verify_bundle`` is :func:`bundle_contract.verify_bundle` (every rule the server applies, plus
the writer's promises) with an optional onnxruntime load of the model. Light at import time (the standard
library and :mod:`bundle_contract`): ``verify_bundle`` is cheap to call from anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import bundle_contract
from bundle_contract import MANIFEST_FILE, MODEL_FILE, REQUIRED_KEYS, TOKENIZER_FILE, BundleError

__all__ = [
    "MANIFEST",
    "MODEL",
    "REPORT",
    "REQUIRED_FILES",
    "REQUIRED_KEYS",
    "SCHEMA_VERSION",
    "TOKENIZER",
    "BundleError",
    "file_entries",
    "iso_utc",
    "library_versions",
    "make_model_version",
    "publish",
    "read_manifest",
    "sha256_file",
    "staging_dir",
    "utc_now",
    "verify_bundle",
    "write_manifest",
    "write_serving_tokenizer",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = bundle_contract.SUPPORTED_SCHEMA_VERSION
MANIFEST = MANIFEST_FILE
MODEL = MODEL_FILE
TOKENIZER = TOKENIZER_FILE
REPORT = "report.md"
REQUIRED_FILES = (MODEL, TOKENIZER)
VERSIONED_PACKAGES = ("torch", "transformers", "onnx", "onnxruntime", "optimum", "optimum-onnx", "tokenizers")


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso_utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_model_version(model_name: str, target: str, created_at: datetime, model_sha256: str) -> str:
    """``<model>-<target>-<UTC time>-<8 hex of the model's sha256>``: sortable and content-addressed."""
    return f"{model_name}-{target}-{created_at.strftime('%Y%m%dT%H%M%S')}-{model_sha256[:8]}"


def library_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in VERSIONED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def write_serving_tokenizer(source: Path, dest: Path) -> None:
    """Copy the fast tokenizer with truncation and padding off: the server sets both from the manifest."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    dest.write_text(tokenizer.to_str(), encoding="utf-8")


def file_entries(directory: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file in ``directory`` except the manifest (flat: bundles have no subdirs)."""
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.iterdir()):
        if path.name == MANIFEST:
            continue
        if not path.is_file():
            raise BundleError(f"unexpected non-file {path.name!r} in bundle {directory}; bundles are flat")
        entries[path.name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return entries


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened for fsync
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_manifest(staging: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Fill ``files`` from ``staging``'s contents, write manifest.json (fsynced); return the full manifest."""
    full = dict(manifest)
    full["schema_version"] = SCHEMA_VERSION
    full["files"] = file_entries(staging)
    path = staging / MANIFEST
    with path.open("w", encoding="utf-8") as fh:
        json.dump(full, fh, indent=2, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    for name in full["files"]:
        with (staging / name).open("rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(staging)
    return full


@contextlib.contextmanager
def staging_dir(parent: Path, name: str) -> Iterator[Path]:
    """A temp dir beside the final bundle (same filesystem: atomic rename); removed unless published."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def publish(staging: Path, final: Path, overwrite: bool = False) -> Path:
    """Atomically move a complete staging dir to ``final`` (``os.replace``).

    With ``overwrite`` an existing bundle is first renamed aside and deleted after the new one is in place, so
    a reader sees either the old bundle or the new one, never a half-written directory.
    """
    old: Path | None = None
    if final.exists():
        if not overwrite:
            raise BundleError(
                f"{final} already exists; pass --overwrite to replace it or choose another --output"
            )
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.replace(old)
    try:
        staging.replace(final)
    except OSError:
        if old is not None:
            old.replace(final)
        raise
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("bundle written: %s", final)
    return final


def read_manifest(bundle_dir: Path) -> dict[str, Any]:
    """A bundle's ``manifest.json`` as a plain JSON object (no checks beyond "a JSON object")."""
    if not Path(bundle_dir).is_dir():
        raise BundleError(f"bundle not found: {bundle_dir} is not a directory; run `python -m export.onnx`")
    return bundle_contract.read_manifest_json(Path(bundle_dir) / MANIFEST)


def verify_bundle(bundle_dir: Path, *, load_model: bool = False) -> dict[str, Any]:
    """Refuse a bundle whose manifest is incomplete or whose files are missing, unlisted or altered.

    The rules are :func:`bundle_contract.verify_bundle`'s. Returns the manifest as a plain dict. With
    ``load_model`` the model is also loaded in a plain CPU onnxruntime session and its input/output names
    compared with the manifest.
    """
    bundle_dir = Path(bundle_dir)
    _, manifest = bundle_contract.verify_bundle(bundle_dir)
    if load_model:
        from export.convert import io_names
        from export.errors import ExportError

        try:
            inputs, outputs = io_names(bundle_dir / MODEL)
        except ExportError as exc:
            raise BundleError(f"{exc}; re-run the export") from exc
        if sorted(inputs) != sorted(manifest["inputs"]) or manifest["output"] not in outputs:
            raise BundleError(
                f"{bundle_dir / MODEL} has inputs {inputs} / outputs {outputs}, the manifest says "
                f"{manifest['inputs']} / {manifest['output']!r}; re-run the export"
            )
    return manifest
