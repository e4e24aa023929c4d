"""Read ticket files into string-only DataFrames, whatever their schema, line endings or newline escapes.

The dataset's files differ (see ../shared/data/tickets/README.md): some are CRLF, some LF; some keep real
newlines inside quoted fields, others store them as a literal backslash-n. Every reader here returns the
file's own columns (header names stripped and lower-cased), every value a ``str`` ("" where missing),
text unescaped.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from training.data.errors import DataValidationError

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".csv", ".parquet")
#: Columns holding free text, where escapes are undone and CRLF becomes LF.
TEXT_COLUMNS = ("subject", "body", "answer")

_ESCAPES = {"\\r\\n": "\n", "\\n": "\n", "\\r": "\n", "\\t": "\t", '\\"': '"'}
_ESCAPE_RE = re.compile("|".join(re.escape(key) for key in _ESCAPES))


def unescape_text(text: str) -> str:
    """Turn literal ``\\n`` (and ``\\r\\n``, ``\\r``, ``\\t``, ``\\"``) escapes into characters.

    Also turns CRLF into LF.
    """
    if "\\" in text:
        text = _ESCAPE_RE.sub(lambda match: _ESCAPES[match.group(0)], text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def resolve_paths(
    paths: Iterable[str | Path],
    exclude: Sequence[str] = (),
    search_roots: Sequence[Path] = (),
    recursive: bool = False,
) -> list[Path]:
    """Expand config paths into a sorted, de-duplicated list of files.

    A directory contributes its ``*.csv`` and ``*.parquet`` files (with ``recursive``, those of its
    sub-directories too, hidden ones such as ``.cache`` excepted) except those whose name matches a pattern in
    ``exclude``; a file is taken as given; a glob pattern (``data/raw/*.csv``) gives the files it matches. A
    relative path is looked up in the working directory first, then under each of ``search_roots``
    (the project root), so ``../shared/data/tickets`` works from any directory.
    """
    files: list[Path] = []
    for raw in paths:
        if any(char in str(raw) for char in "*?["):
            files.extend(_glob(str(raw), search_roots))
            continue
        path = _locate(Path(raw), search_roots)
        if path.is_dir():
            found = _data_files(path, recursive)
            kept = [p for p in found if not any(fnmatch.fnmatch(p.name, pattern) for pattern in exclude)]
            for skipped in sorted(set(found) - set(kept)):
                logger.info("excluded by data.exclude: %s", skipped)
            if not kept:
                raise DataValidationError(
                    f"directory {path} holds no .csv or .parquet file (after data.exclude={list(exclude)})"
                )
            files.extend(kept)
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise DataValidationError(f"{path}: unsupported file type; use .csv or .parquet")
            files.append(path)
        else:
            raise DataValidationError(
                f"data path not found: {raw} (looked in {Path.cwd()} and the project root)"
            )
    unique: list[Path] = []
    for file in files:
        if file.resolve() not in {u.resolve() for u in unique}:
            unique.append(file)
    if not unique:
        raise DataValidationError("data.paths is empty: give at least one file or directory")
    return unique


def _glob(pattern: str, search_roots: Sequence[Path]) -> list[Path]:
    bases = [Path.cwd(), *search_roots] if not Path(pattern).is_absolute() else [Path(pattern).anchor]
    for base in bases:
        root = Path(base)
        relative = str(Path(pattern).relative_to(root)) if Path(pattern).is_absolute() else pattern
        matches = sorted(
            p for p in root.glob(relative) if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
        )
        if matches:
            return matches
    raise DataValidationError(f"data path pattern {pattern} matches no .csv or .parquet file")


def _data_files(directory: Path, recursive: bool) -> list[Path]:
    candidates = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(
        p
        for p in candidates
        if p.is_file()
        and p.suffix.lower() in SUPPORTED_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def _locate(path: Path, search_roots: Sequence[Path]) -> Path:
    if path.is_absolute() or path.exists():
        return path
    for root in search_roots:
        candidate = root / path
        if candidate.exists():
            return candidate
    return path


def read_table(path: Path, unescape: bool = True) -> pd.DataFrame:
    """Read one CSV or parquet file; raise DataValidationError naming the file when it cannot be used."""
    frame = _read_parquet(path) if path.suffix.lower() == ".parquet" else _read_csv(path)
    frame.columns = [str(column).strip().lower() for column in frame.columns]
    if frame.empty:
        raise DataValidationError(f"{path}: the file has a header but no data rows")
    for column in frame.columns:
        frame[column] = frame[column].fillna("").astype(str)
    if unescape:
        for column in TEXT_COLUMNS:
            if column in frame.columns:
                frame[column] = frame[column].map(unescape_text)
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    # header=None: the header row is read as data, so a row with more fields than the header is an
    # error rather than silently truncated (index_col=False) or turned into an index (pandas' inference).
    try:
        table = pd.read_csv(
            path,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            encoding="utf-8-sig",
            on_bad_lines="error",
        )
    except pd.errors.EmptyDataError as error:
        raise DataValidationError(f"{path}: the file is empty (no header, no rows)") from error
    except pd.errors.ParserError as error:
        detail = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable CSV"
        raise DataValidationError(
            f"{path}: broken CSV ({detail}); check that every quoted field is closed and every row has the "
            "header's number of fields"
        ) from error
    except UnicodeDecodeError as error:
        raise DataValidationError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from error
    header = [str(name).strip() for name in table.iloc[0]]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DataValidationError(f"{path}: duplicate column names in the header: {duplicated}")
    frame = table.iloc[1:].reset_index(drop=True)
    frame.columns = header
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise DataValidationError(f"{path}: not a readable parquet file ({error})") from error
    for column in frame.columns:
        series = frame[column]
        frame[column] = series.astype("string").fillna("").astype(str)
    return frame
