"""The serving-bundle contract (docs/contracts.md sections 1 and 4), torch-free: one home for the manifest
schema, its reader with checksum verification, the text recipe and the padding rule.

Export writes bundles (the writer side, ``export.bundle``, stays there) and checks them with
:func:`verify_bundle`; the server and monitoring read them with :func:`load_bundle`; training's data stage
uses :func:`build_text`. All of them import this package, which depends on msgspec and numpy only (never
torch, transformers, onnxruntime or tokenizers).
"""

from __future__ import annotations

from bundle_contract.manifest import (
    KNOWN_INPUTS,
    MANIFEST_FILE,
    MODEL_FILE,
    REQUIRED_KEYS,
    SUPPORTED_SCHEMA_VERSION,
    TOKENIZER_FILE,
    Bundle,
    BundleError,
    Calibration,
    FileEntry,
    Manifest,
    Review,
    check_serving_tokenizer,
    load_bundle,
    read_manifest,
    read_manifest_json,
    verify_bundle,
    verify_file,
)
from bundle_contract.padding import pad_batch
from bundle_contract.text import KNOWN_FIELDS, TextRecipe, build_text

__all__ = [
    "KNOWN_FIELDS",
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
    "TextRecipe",
    "build_text",
    "check_serving_tokenizer",
    "load_bundle",
    "pad_batch",
    "read_manifest",
    "read_manifest_json",
    "verify_bundle",
    "verify_file",
]
