"""The data stage: load, validate, clean, dedupe and split the ticket files (docs/contracts.md, sections 1-2).

Command line: ``python -m training.data --help``.
"""

from training.data.errors import DataError, DataValidationError, DownloadError
from training.data.prepare import PreparedData, load_prepared, prepare
from training.data.recipe import DEFAULT_RECIPE, build_text

__all__ = [
    "DEFAULT_RECIPE",
    "DataError",
    "DataValidationError",
    "DownloadError",
    "PreparedData",
    "build_text",
    "load_prepared",
    "prepare",
]
