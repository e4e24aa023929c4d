"""Typed reader of the serving bundle (docs/contracts.md, section 4) with checksum verification.

The export stage writes the bundle; ``load_bundle`` (what the server and monitoring run) refuses one that is
incomplete or altered, with a :class:`BundleError` that names the file and says what to do.
``verify_bundle`` (what the export runs before it publishes, and the release pipeline's check) applies the
same rules plus the writer's promises: every key of section 4 present, no file the manifest does not list,
a tokenizer that leaves truncation and padding to the server.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from bundle_contract.text import KNOWN_FIELDS, KNOWN_STRIP_STEPS, TextRecipe

__all__ = [
    "KNOWN_INPUTS",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "REQUIRED_KEYS",
    "SUPPORTED_SCHEMA_VERSION",
    "TOKENIZER_FILE",
    "Bundle",
    "BundleError",
    "Calibration",
    "FileEntry",
    "Manifest",
    "Review",
    "check_serving_tokenizer",
    "load_bundle",
    "read_manifest",
    "read_manifest_json",
    "verify_bundle",
    "verify_file",
]

SUPPORTED_SCHEMA_VERSION = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: every key the export writes (section 4); :func:`verify_bundle` requires them all, while the server's
#: :func:`load_bundle` needs only the fields of :class:`Manifest` without a default
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
_RERUN = "re-run `python -m export.onnx` to write a fresh bundle"


class BundleError(RuntimeError):
    """The bundle directory cannot be served as it is; the message says why and what to do."""


class FileEntry(msgspec.Struct, frozen=True):
    sha256: str
    bytes: int


class Calibration(msgspec.Struct, frozen=True):
    """Temperature scaling with a per-label bias: calibrated logits ``c = (z + bias) / temperature``."""

    temperature: float = 1.0
    bias: list[float] | None = None
    fitted_on: str = ""
    n: int = 0


class Review(msgspec.Struct, frozen=True):
    """Predictions with confidence below ``threshold`` get ``needs_review: true``."""

    threshold: float
    target_accuracy: float | None = None


class Manifest(msgspec.Struct, frozen=True):
    """The keys of ``manifest.json`` the readers rely on; unknown keys are ignored (as the contract says)."""

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
    metrics: dict[str, Any] | None = None
    calibration: Calibration | None = None
    review: Review | None = None
    # the device the model was exported for: "cpu" (fp32 or int8) or "cuda" (fp32 or fp16, export.gpu)
    device: Literal["cpu", "cuda"] = "cpu"
    precision: str = ""

    @property
    def dtype(self) -> str:
        """``int8``, ``fp16`` or ``fp32``: the weights' number format."""
        if self.quantization:
            return str(self.quantization.get("dtype", "int8"))
        return self.precision or "fp32"


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
    _check_directory(path)
    manifest_path = path / MANIFEST_FILE
    return _checked_bundle(
        path, _decode_manifest(manifest_path, _read_manifest_bytes(manifest_path)), verify_checksums
    )


def _checked_bundle(path: Path, manifest: Manifest, verify_checksums: bool) -> Bundle:
    _check_manifest(path, manifest)
    for name in (MODEL_FILE, TOKENIZER_FILE):
        if name not in manifest.files:
            raise BundleError(f"{path / MANIFEST_FILE} does not list {name} under `files`; {_RERUN}")
    for name, entry in manifest.files.items():
        verify_file(path, name, entry, verify_checksums)
    return Bundle(path=path, manifest=manifest)


def _check_directory(path: Path) -> None:
    if not path.is_dir():
        raise BundleError(
            f"bundle directory {path} does not exist or is not a directory; set MODEL_DIR to the "
            f"directory written by `python -m export.onnx` (e.g. bundles/<model_version>)"
        )


def read_manifest(manifest_path: Path) -> Manifest:
    """Decode ``manifest.json`` into a :class:`Manifest` (the schema; :func:`load_bundle` checks more)."""
    return _decode_manifest(manifest_path, _read_manifest_bytes(manifest_path))


def read_manifest_json(manifest_path: Path) -> dict[str, Any]:
    """``manifest.json`` as the plain JSON object the export wrote (every key, known or not; no checks)."""
    return _decode_json_object(manifest_path, _read_manifest_bytes(manifest_path))


def _decode_json_object(manifest_path: Path, raw: bytes) -> dict[str, Any]:
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BundleError(f"{manifest_path} is not valid JSON ({exc}); {_RERUN}") from None
    if not isinstance(obj, dict):
        raise BundleError(f"{manifest_path} must hold a JSON object; {_RERUN}")
    return obj


def _read_manifest_bytes(manifest_path: Path) -> bytes:
    try:
        return manifest_path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{manifest_path} is missing: this is not a complete bundle; {_RERUN}") from None
    except OSError as exc:
        raise BundleError(
            f"cannot read {manifest_path}: {exc.strerror}; check the file's permissions"
        ) from None


def _decode_manifest(manifest_path: Path, raw: bytes) -> Manifest:
    try:
        return msgspec.json.decode(raw, type=Manifest)
    except msgspec.ValidationError as exc:
        raise BundleError(f"{manifest_path} does not match the bundle contract: {exc}; {_RERUN}") from None
    except msgspec.DecodeError as exc:
        raise BundleError(f"{manifest_path} is not valid JSON ({exc}); {_RERUN}") from None


def verify_bundle(model_dir: Path | str) -> tuple[Bundle, dict[str, Any]]:
    """Everything :func:`load_bundle` checks (checksums included), plus what the writer promises: every key
    of :data:`REQUIRED_KEYS`, no file the manifest does not list, and a tokenizer without truncation or
    padding. Returns the bundle and the manifest as the plain JSON object."""
    path = Path(model_dir)
    _check_directory(path)
    manifest_path = path / MANIFEST_FILE
    raw = _read_manifest_bytes(manifest_path)
    obj = _decode_json_object(manifest_path, raw)
    missing_keys = [key for key in REQUIRED_KEYS if key not in obj]
    if missing_keys:
        raise BundleError(f"{manifest_path} lacks {', '.join(missing_keys)}; {_RERUN}")
    bundle = _checked_bundle(path, _decode_manifest(manifest_path, raw), verify_checksums=True)
    listed = bundle.manifest.files
    unlisted = sorted(p.name for p in path.iterdir() if p.name != MANIFEST_FILE and p.name not in listed)
    if unlisted:
        raise BundleError(
            f"bundle {path} holds files its manifest does not list: {', '.join(unlisted)}; "
            f"remove them or {_RERUN}"
        )
    check_serving_tokenizer(bundle.tokenizer_path)
    return bundle, obj


def check_serving_tokenizer(path: Path) -> None:
    """The server sets truncation and padding from the manifest: the tokenizer file must not carry its own."""
    try:
        tokenizer = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise BundleError(f"{path} is not a readable tokenizer.json ({exc}); {_RERUN}") from None
    if not isinstance(tokenizer, dict):
        raise BundleError(f"{path} is not a tokenizer.json (not a JSON object); {_RERUN}")
    enabled = [key for key in ("truncation", "padding") if tokenizer.get(key) is not None]
    if enabled:
        raise BundleError(
            f"{path} has {' and '.join(enabled)} enabled; the bundle's tokenizer must leave both to the "
            f"server (max_length and pad_token_id come from the manifest); {_RERUN}"
        )


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
    unknown_steps = [name for name in m.text_recipe.strip if name not in KNOWN_STRIP_STEPS]
    if unknown_steps:
        problems.append(
            f"text_recipe.strip names steps this server does not know: {unknown_steps} (known: "
            f"{list(KNOWN_STRIP_STEPS)}); upgrade the server"
        )
    for name in m.files:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            problems.append(f"files lists {name!r}, which is outside the bundle")
    if m.calibration is not None:
        c = m.calibration
        if not (math.isfinite(c.temperature) and c.temperature > 0):
            problems.append(f"calibration.temperature must be a positive number, got {c.temperature}")
        if c.bias is not None and (len(c.bias) != len(m.labels) or not all(math.isfinite(b) for b in c.bias)):
            problems.append(
                f"calibration.bias must have one finite number per label ({len(m.labels)}), got {c.bias}"
            )
    if m.review is not None and not 0.0 <= m.review.threshold <= 1.0:
        problems.append(f"review.threshold must be between 0 and 1, got {m.review.threshold}")
    if m.device == "cuda" and m.quantization:
        problems.append("a cuda bundle cannot be int8-quantized (dynamic int8 is a CPU format)")
    if problems:
        raise BundleError(f"{where} is invalid: " + "; ".join(problems) + f"; {_RERUN}")


def verify_file(path: Path, name: str, entry: FileEntry, verify_checksum: bool = True) -> None:
    """Check one listed file's size (and sha256 unless ``verify_checksum`` is false)."""
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
    if not verify_checksum:
        return
    try:
        with file_path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise BundleError(f"cannot read {file_path}: {exc.strerror}; check the file's permissions") from None
    if digest != entry.sha256.lower():
        raise BundleError(
            f"{name} checksum mismatch: expected {entry.sha256}, got {digest} "
            f"(in {path}); the file was changed after export; {_RERUN}"
        )
