"""Typed reader of the serving bundle (docs/contracts.md, section 4) with checksum verification.

The export stage writes the bundle; this module is the server's side of that contract. ``load_bundle``
refuses a bundle that is incomplete or altered, with a :class:`BundleError` that names the file and says what
to do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from server.text import KNOWN_FIELDS, TextRecipe

__all__ = ["SUPPORTED_SCHEMA_VERSION", "Bundle", "BundleError", "FileEntry", "Manifest", "load_bundle"]

SUPPORTED_SCHEMA_VERSION = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_RERUN = "re-run `python -m export.onnx` to write a fresh bundle"


class BundleError(RuntimeError):
    """The bundle directory cannot be served as it is; the message says why and what to do."""


class FileEntry(msgspec.Struct, frozen=True):
    sha256: str
    bytes: int


class Manifest(msgspec.Struct, frozen=True):
    """The keys of ``manifest.json`` the server relies on; unknown keys are ignored (as the contract says)."""

    schema_version: int
    model_version: str
    labels: list[str]
    max_length: int
    text_recipe: TextRecipe
    inputs: list[str]
    files: dict[str, FileEntry]
    output: str = "logits"
    pad_token_id: int = 0
    pad_token: str = "[PAD]"
    model_name: str = ""
    target: str = "priority"
    pretrained: str = ""
    quantization: dict[str, Any] | None = None
    created_at: str = ""


@dataclass(frozen=True, slots=True)
class Bundle:
    """A verified bundle: its directory, manifest, and the paths of the files the engine loads."""

    path: Path
    manifest: Manifest

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_FILE


def load_bundle(model_dir: Path | str, verify_checksums: bool = True) -> Bundle:
    """Read and check ``model_dir``: manifest schema, required files, size and sha256 of every listed file."""
    path = Path(model_dir)
    if not path.is_dir():
        raise BundleError(
            f"bundle directory {path} does not exist or is not a directory; set MODEL_DIR to the "
            f"directory written by `python -m export.onnx` (e.g. bundles/<model_version>)"
        )
    manifest = _read_manifest(path / MANIFEST_FILE)
    _check_manifest(path, manifest)
    for name in (MODEL_FILE, TOKENIZER_FILE):
        if name not in manifest.files:
            raise BundleError(f"{path / MANIFEST_FILE} does not list {name} under `files`; {_RERUN}")
    for name, entry in manifest.files.items():
        _check_file(path, name, entry, verify_checksums)
    return Bundle(path=path, manifest=manifest)


def _read_manifest(manifest_path: Path) -> Manifest:
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{manifest_path} is missing: this is not a complete bundle; {_RERUN}") from None
    except OSError as exc:
        raise BundleError(
            f"cannot read {manifest_path}: {exc.strerror}; check the file's permissions"
        ) from None
    try:
        return msgspec.json.decode(raw, type=Manifest)
    except msgspec.ValidationError as exc:
        raise BundleError(f"{manifest_path} does not match the bundle contract: {exc}; {_RERUN}") from None
    except msgspec.DecodeError as exc:
        raise BundleError(f"{manifest_path} is not valid JSON ({exc}); {_RERUN}") from None


def _check_manifest(path: Path, m: Manifest) -> None:
    where = path / MANIFEST_FILE
    if m.schema_version != SUPPORTED_SCHEMA_VERSION:
        raise BundleError(
            f"{where} has schema_version {m.schema_version}, this server reads version "
            f"{SUPPORTED_SCHEMA_VERSION}; export the bundle with the matching project version or upgrade "
            "the server"
        )
    problems: list[str] = []
    if not m.model_version.strip():
        problems.append("model_version is empty")
    if len(m.labels) < 2 or len(set(m.labels)) != len(m.labels):
        problems.append(f"labels must be at least two distinct names, got {m.labels}")
    if m.max_length < 2:
        problems.append(f"max_length must be >= 2, got {m.max_length}")
    unknown_inputs = [name for name in m.inputs if name not in KNOWN_INPUTS]
    if unknown_inputs or "input_ids" not in m.inputs:
        problems.append(f"inputs must include input_ids and only use {list(KNOWN_INPUTS)}, got {m.inputs}")
    unknown_fields = [name for name in m.text_recipe.fields if name not in KNOWN_FIELDS]
    if unknown_fields or not m.text_recipe.fields:
        problems.append(
            f"text_recipe.fields must be a non-empty subset of {list(KNOWN_FIELDS)}, got "
            f"{list(m.text_recipe.fields)}"
        )
    for name in m.files:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            problems.append(f"files lists {name!r}, which is outside the bundle")
    if problems:
        raise BundleError(f"{where} is invalid: " + "; ".join(problems) + f"; {_RERUN}")


def _check_file(path: Path, name: str, entry: FileEntry, verify_checksums: bool) -> None:
    file_path = path / name
    try:
        size = file_path.stat().st_size
    except FileNotFoundError:
        raise BundleError(f"{file_path} is missing (listed in manifest.json); {_RERUN}") from None
    if size != entry.bytes:
        raise BundleError(
            f"{file_path} has {size} bytes, manifest.json says {entry.bytes}: the file is truncated or "
            f"was changed after export; {_RERUN}"
        )
    if not verify_checksums:
        return
    digest = hashlib.sha256()
    try:
        with file_path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise BundleError(f"cannot read {file_path}: {exc.strerror}; check the file's permissions") from None
    if digest.hexdigest() != entry.sha256.lower():
        raise BundleError(
            f"{name} checksum mismatch: expected {entry.sha256}, got {digest.hexdigest()} "
            f"(in {path}); the file was changed after export; {_RERUN}"
        )
