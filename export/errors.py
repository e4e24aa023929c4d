"""Errors of the export stage. Every message says what went wrong and what to do about it.

:class:`BundleError` is the bundle contract's one class (:mod:`bundle_contract`), re-exported here; it is not
an :class:`ExportError`, so the CLI catches both (exit 2). :class:`GateFailedError` lives with the gate
(:mod:`export.verify`); ``from export import GateFailedError`` is the import to use.
"""

from __future__ import annotations

from bundle_contract import BundleError

__all__ = ["BundleError", "CheckpointError", "DataError", "ExportError"]


class ExportError(Exception):
    """A problem the user can fix (bad path, missing data, offline): the CLI prints it and exits 2."""


class CheckpointError(ExportError):
    """The checkpoint is missing or does not follow docs/contracts.md section 3."""


class DataError(ExportError):
    """The validation data for the gate is missing or does not match the checkpoint."""
