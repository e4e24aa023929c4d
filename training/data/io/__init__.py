"""Readers for the ticket files (CSV and parquet)."""

from training.data.io.loaders import SUPPORTED_SUFFIXES, read_table, resolve_paths, unescape_text

__all__ = ["SUPPORTED_SUFFIXES", "read_table", "resolve_paths", "unescape_text"]
