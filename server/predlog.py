"""The prediction log (docs/contracts.md, section 5): JSON lines for ``monitoring.drift``, off by default.

A request only puts a record into a bounded in-memory queue (never waits); one background thread appends the
records to the file. A full queue, a full disk or an unwritable path drops records and counts them
(``ticket_triage_prediction_log_dropped_total``); predictions are never affected.

Memory is bounded: the request path guesses the language itself, so a queued record holds the ticket text
only when text logging is on, and then the queue also stops at ``max_queued_bytes`` of text. The file rotates
at ``max_bytes`` (``path.1`` ... ``path.<backups>``); the path ``-`` writes to stdout instead (for platforms
that collect stdout, e.g. Cloud Logging).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

import msgspec

__all__ = ["PredictionLog", "utc_timestamp"]

logger = logging.getLogger(__name__)

_STOP = object()
_WARN_EVERY_S = 60.0
_MAX_LINES_PER_WRITE = 1000


def utc_timestamp(epoch_s: float | None = None) -> str:
    """``2026-11-29T10:15:00.123Z`` (UTC, milliseconds)."""
    t = time.time() if epoch_s is None else epoch_s
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


class PredictionLog:
    """Append-only JSONL writer fed through a bounded queue by a daemon thread."""

    def __init__(
        self,
        path: Path,
        include_text: bool = False,
        queue_size: int = 10_000,
        on_drop: Callable[[int], None] | None = None,
        max_bytes: int = 100 * 1024 * 1024,
        backups: int = 3,
        max_queued_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.path = path
        self.include_text = include_text
        self.to_stdout = str(path) == "-"
        self.max_bytes = max_bytes
        self.backups = backups
        self.max_queued_bytes = max_queued_bytes
        self._queued_bytes = 0  # text characters waiting in the queue (only with include_text)
        self._size = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._on_drop = on_drop
        self._encoder = msgspec.json.Encoder()
        self._thread: threading.Thread | None = None
        self._file: IO[bytes] | None = None
        self._last_warning = -_WARN_EVERY_S
        self._lock = threading.Lock()  # counters are touched by the event loop and the writer thread
        self.dropped = 0
        self.written = 0

    def start(self) -> None:
        """Start the writer thread; an unusable path is reported now (once) but never stops the server."""
        try:
            self._open()
        except OSError as exc:
            self._warn(
                f"prediction log {self.path} is not writable ({exc.strerror}); records will be dropped "
                "and counted until it is; fix PREDICTION_LOG_PATH or the directory's permissions"
            )
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        logger.info(
            "prediction log: appending JSON lines to %s (text %s)",
            self.path,
            "included" if self.include_text else "not included",
        )

    def log(self, record: dict[str, Any], text: str | None = None) -> None:
        """Queue one record; never blocks (a full queue drops it). ``text`` is kept and written only when
        text logging is enabled."""
        if not self.include_text:
            text = None
        n = len(text) if text is not None else 0
        with self._lock:
            if n and self._queued_bytes + n > self.max_queued_bytes:
                full = True
            else:
                full = False
                self._queued_bytes += n
        if full:
            self._drop(
                1, "the prediction-log queue holds too much text (the disk is slower than the traffic)"
            )
            return
        try:
            self._queue.put_nowait((record, text))
        except queue.Full:
            with self._lock:
                self._queued_bytes -= n
            self._drop(1, "the prediction-log queue is full (the disk is slower than the traffic)")

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (up to ``timeout_s``) and stop the thread."""
        if self._thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            logger.warning("prediction log: queue still full at shutdown; unwritten records are lost")
        self._thread.join(timeout=timeout_s)
        self._thread = None
        self._close_file()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            records = [first]
            while len(records) < _MAX_LINES_PER_WRITE:
                try:
                    records.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(r is _STOP for r in records)
            lines = [r for r in records if r is not _STOP]
            if lines:
                self._write(lines)
            if stop:
                return

    def _write(self, records: list[object]) -> None:
        try:
            data = b"".join(self._encoder.encode(self._complete(r)) + b"\n" for r in records)
            if self._file is None:
                self._open()
            assert self._file is not None
            if (
                not self.to_stdout
                and self.max_bytes
                and self._size
                and self._size + len(data) > self.max_bytes
            ):
                self._rotate()
                assert self._file is not None
            self._file.write(data)
            self._file.flush()
            self._size += len(data)
            self.written += len(records)
        except (OSError, ValueError, TypeError, msgspec.EncodeError) as exc:
            self._close_file()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
            self._drop(len(records), f"cannot append to {self.path}: {reason}")

    def _complete(self, item: object) -> dict[str, Any]:
        record, text = cast("tuple[dict[str, Any], str | None]", item)
        if text is not None:
            with self._lock:
                self._queued_bytes -= len(text)
            record["text"] = text
        return record

    def _open(self) -> None:
        if self.to_stdout:
            self._file = sys.stdout.buffer
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")
        self._size = self._file.tell()

    def _rotate(self) -> None:
        """``path`` -> ``path.1`` -> ... -> ``path.<backups>`` (the oldest is deleted); a fresh ``path``."""
        self._close_file()
        for i in range(self.backups, 0, -1):
            source = self.path if i == 1 else self.path.with_name(f"{self.path.name}.{i - 1}")
            if source.exists():
                source.replace(self.path.with_name(f"{self.path.name}.{i}"))
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        self._open()

    def _close_file(self) -> None:
        if self.to_stdout:
            self._file = None
            return
        if self._file is not None:
            # a failed flush on close (disk full) loses those bytes; they are already counted as dropped
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _drop(self, n: int, reason: str) -> None:
        with self._lock:
            self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n)
        self._warn(f"prediction log: dropped {n} record(s): {reason}")

    def _warn(self, message: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last_warning < _WARN_EVERY_S:  # one warning a minute, not one per request
                return
            self._last_warning = now
        logger.warning(message)
