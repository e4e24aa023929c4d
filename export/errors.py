"""Errors of the export stage. Every message says what went wrong and what to do about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from export.verify import GateReport


class ExportError(Exception):
    """A problem the user can fix (bad path, missing data, offline): the CLI prints it and exits 2."""


class CheckpointError(ExportError):
    """The checkpoint is missing or does not follow docs/contracts.md section 3."""


class DataError(ExportError):
    """The validation data for the gate is missing or does not match the checkpoint."""


class BundleError(ExportError):
    """A bundle is incomplete or its files do not match the manifest's checksums."""


class GateFailedError(ExportError):
    """The verification gate failed: no bundle was written. Carries the full report."""

    def __init__(self, report: GateReport) -> None:
        self.report = report
        failed = ", ".join(c.summary() for c in report.failed_checks())
        super().__init__(f"verification gate failed, no bundle written: {failed}")
