"""The serving bundle (docs/contracts.md section 4): manifest writer, atomic directory write, loader check.

Only the standard library at import time: ``verify_bundle`` is cheap to call from anywhere.
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

from export.errors import BundleError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MODEL = "model.onnx"
TOKENIZER = "tokenizer.json"
REPORT = "report.md"
REQUIRED_FILES = (MODEL, TOKENIZER)
REQUIRED_KEYS = (
    "schema_version",
    "model_version",
    "model_name",
    "target",
    "labels",
    "max_length",
    "text_recipe",
    "inputs",
    "output",
    "pad_token",
    "pad_token_id",
    "quantization",
    "files",
    "metrics",
    "versions",
    "created_at",
)
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
    path = bundle_dir / MANIFEST
    if not bundle_dir.is_dir():
        raise BundleError(f"bundle not found: {bundle_dir} is not a directory; run `python -m export.onnx`")
    if not path.is_file():
        raise BundleError(f"{bundle_dir} has no {MANIFEST}: not a bundle, or a broken one; re-run the export")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); re-run the export") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{path} must hold a JSON object; re-run the export")
    return manifest


def _check_serving_tokenizer(path: Path) -> None:
    """The server sets truncation and padding from the manifest: the file must not carry its own."""
    try:
        tokenizer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not a readable tokenizer.json ({exc}); re-run the export") from exc
    enabled = [key for key in ("truncation", "padding") if tokenizer.get(key) is not None]
    if enabled:
        raise BundleError(
            f"{path} has {' and '.join(enabled)} enabled; the bundle's tokenizer must leave both to the "
            "server (max_length and pad_token_id come from the manifest); re-run the export"
        )


def verify_bundle(bundle_dir: Path, *, load_model: bool = False) -> dict[str, Any]:
    """Refuse a bundle whose manifest is incomplete or whose files are missing, unlisted or altered.

    Returns the manifest. With ``load_model`` the model is also loaded in a plain CPU onnxruntime session and
    its input/output names compared with the manifest.
    """
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    missing_keys = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing_keys:
        raise BundleError(f"{bundle_dir / MANIFEST} lacks {', '.join(missing_keys)}; re-run the export")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise BundleError(
            f"{bundle_dir}: manifest schema_version {manifest['schema_version']} is not {SCHEMA_VERSION}; "
            "re-run the export with this version of the code"
        )
    files = manifest["files"]
    if not isinstance(files, dict):
        raise BundleError(f"{bundle_dir / MANIFEST}: 'files' must be an object; re-run the export")
    for name in REQUIRED_FILES:
        if name not in files:
            raise BundleError(f"{bundle_dir / MANIFEST} does not list {name}; re-run the export")
    for name, entry in files.items():
        path = bundle_dir / name
        if not path.is_file():
            raise BundleError(f"bundle {bundle_dir} is missing {name}; re-run the export")
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise BundleError(
                f"{name} size mismatch in {bundle_dir}: expected {entry.get('bytes')} bytes, got {size}; "
                "re-run the export"
            )
        actual = sha256_file(path)
        if actual != entry.get("sha256"):
            raise BundleError(
                f"{name} checksum mismatch in {bundle_dir}: expected {entry.get('sha256')}, got {actual}; "
                "re-run the export"
            )
    unlisted = sorted(p.name for p in bundle_dir.iterdir() if p.name != MANIFEST and p.name not in files)
    if unlisted:
        raise BundleError(
            f"bundle {bundle_dir} holds files its manifest does not list: {', '.join(unlisted)}; "
            "remove them or re-run the export"
        )
    _check_serving_tokenizer(bundle_dir / TOKENIZER)
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
