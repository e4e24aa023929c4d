"""Exceptions of the data stage: each message says what is wrong and what to do."""

from __future__ import annotations


class DataError(Exception):
    """Base class of every error the data stage raises on purpose."""


class DataValidationError(DataError):
    """An input file or the data config is unusable (missing column, unknown label, empty file, bad CSV)."""


class DownloadError(DataError):
    """The real dataset could not be fetched (offline, missing credentials, unknown source)."""
