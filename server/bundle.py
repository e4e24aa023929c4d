"""The server's view of the bundle contract: re-exports :mod:`bundle_contract` (one reader for all)."""

from __future__ import annotations

from bundle_contract import (
    KNOWN_INPUTS,
    SUPPORTED_SCHEMA_VERSION,
    Bundle,
    BundleError,
    FileEntry,
    Manifest,
    load_bundle,
)

__all__ = [
    "KNOWN_INPUTS",
    "SUPPORTED_SCHEMA_VERSION",
    "Bundle",
    "BundleError",
    "FileEntry",
    "Manifest",
    "load_bundle",
]
