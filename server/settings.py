"""Server configuration: environment variables only, read and validated once at start.

Every variable, its default and its meaning is listed in ``docs/server.md``; ``Settings.from_env`` is the
one place that reads them. Invalid values raise :class:`SettingsError` with a message naming the variable and
what a valid value looks like, so ``python -m server`` can print one line and exit non-zero.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["Settings", "SettingsError"]

_T = TypeVar("_T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class SettingsError(ValueError):
    """An environment variable is missing or has a value the server cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated server settings (defaults chosen for a 2-vCPU Cloud Run instance)."""

    model_dir: Path
    host: str = "0.0.0.0"  # a container must listen on all interfaces
    port: int = 8080
    # inference: ORT runs in `inference_workers` threads, each with `ort_intra_op_threads` intra-op threads
    inference_workers: int = 2
    ort_intra_op_threads: int = 1
    # intra-op threads of a second ORT session used when a batch runs alone (one client gets every core);
    # None = the machine's cores when there are more than ORT_INTRA_OP_THREADS; 0 = off
    ort_idle_threads: int | None = None
    # cross-request micro-batching
    # (measured, benchmarks/ and docs/server.md: on 2 CPU cores batching pays off for short texts only, so the
    # padded-token budget keeps typical ~100-token tickets in batches of 1-2 and no request waits for company)
    # None = by device: 1 on CPU (int8 logits move with batch mates, and batching does not pay on few cores),
    # GPU_MAX_BATCH_SIZE on CUDA
    max_batch_size: int | None = None
    max_batch_tokens: int = 256
    batch_max_wait_ms: float = 0.0
    max_queue_size: int = 128
    retry_after_s: int = 1
    # admission control: requests admitted (body read, queued or running) at once; more get a 429 before their
    # body is read. 0 = MAX_QUEUE_SIZE + INFERENCE_WORKERS
    max_inflight_requests: int = 0
    # a request not answered within this many seconds gets 503 (0 = no deadline)
    request_timeout_s: float = 30.0
    # execution provider: auto (CUDA for a cuda bundle when available, else CPU), cpu, cuda
    execution_provider: str = "auto"
    gpu_max_batch_size: int = 32
    gpu_max_batch_tokens: int = 16_384
    # request limits
    max_text_chars: int = 20_000
    max_batch_items: int = 64
    # operations
    log_level: str = "INFO"
    log_format: str = "text"
    request_log: bool = False
    shutdown_timeout_s: float = 8.0
    # prediction log (off unless a path is set)
    prediction_log_path: Path | None = None
    prediction_log_text: bool = False
    prediction_log_queue_size: int = 10_000
    prediction_log_max_bytes: int = 100 * 1024 * 1024
    prediction_log_backups: int = 3
    # fault injection for the fault tests only (never set in production): "collector" kills the batcher
    inject_fault: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read all settings from ``environ`` (default ``os.environ``); SettingsError on the first bad one."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        model_dir_raw = env.get("MODEL_DIR", "").strip()
        if not model_dir_raw:
            raise SettingsError(
                "MODEL_DIR is not set: point it at a bundle directory written by `python -m export.onnx` "
                "(e.g. MODEL_DIR=bundles/<model_version>)"
            )
        defaults = cls(model_dir=Path(model_dir_raw))
        log_path_raw = env.get("PREDICTION_LOG_PATH", "").strip()
        settings = cls(
            model_dir=Path(model_dir_raw),
            host=reader.text("HOST", defaults.host),
            port=reader.integer("PORT", defaults.port, 1, 65535),
            inference_workers=reader.integer("INFERENCE_WORKERS", defaults.inference_workers, 1, 64),
            ort_intra_op_threads=reader.integer("ORT_INTRA_OP_THREADS", defaults.ort_intra_op_threads, 1, 64),
            ort_idle_threads=reader.optional_integer("ORT_IDLE_THREADS", 0, 64),
            max_batch_size=reader.optional_integer("MAX_BATCH_SIZE", 1, 1024),
            max_batch_tokens=reader.integer("MAX_BATCH_TOKENS", defaults.max_batch_tokens, 1, 10_000_000),
            batch_max_wait_ms=reader.number("BATCH_MAX_WAIT_MS", defaults.batch_max_wait_ms, 0.0, 1000.0),
            max_queue_size=reader.integer("MAX_QUEUE_SIZE", defaults.max_queue_size, 1, 1_000_000),
            retry_after_s=reader.integer("RETRY_AFTER_S", defaults.retry_after_s, 1, 3600),
            max_inflight_requests=reader.integer(
                "MAX_INFLIGHT_REQUESTS", defaults.max_inflight_requests, 0, 1_000_000
            ),
            request_timeout_s=reader.number("REQUEST_TIMEOUT_S", defaults.request_timeout_s, 0.0, 3600.0),
            execution_provider=reader.choice(
                "EXECUTION_PROVIDER", defaults.execution_provider, ("auto", "cpu", "cuda")
            ),
            gpu_max_batch_size=reader.integer("GPU_MAX_BATCH_SIZE", defaults.gpu_max_batch_size, 1, 1024),
            gpu_max_batch_tokens=reader.integer(
                "GPU_MAX_BATCH_TOKENS", defaults.gpu_max_batch_tokens, 1, 10_000_000
            ),
            max_text_chars=reader.integer("MAX_TEXT_CHARS", defaults.max_text_chars, 1, 10_000_000),
            max_batch_items=reader.integer("MAX_BATCH_ITEMS", defaults.max_batch_items, 1, 100_000),
            log_level=reader.choice("LOG_LEVEL", defaults.log_level, _LOG_LEVELS, upper=True),
            log_format=reader.choice("LOG_FORMAT", defaults.log_format, ("text", "json")),
            request_log=reader.boolean("REQUEST_LOG", defaults.request_log),
            shutdown_timeout_s=reader.number("SHUTDOWN_TIMEOUT_S", defaults.shutdown_timeout_s, 0.0, 3600.0),
            prediction_log_path=Path(log_path_raw) if log_path_raw else None,
            prediction_log_text=reader.boolean("PREDICTION_LOG_TEXT", defaults.prediction_log_text),
            prediction_log_queue_size=reader.integer(
                "PREDICTION_LOG_QUEUE_SIZE", defaults.prediction_log_queue_size, 1, 10_000_000
            ),
            prediction_log_max_bytes=reader.integer(
                "PREDICTION_LOG_MAX_BYTES", defaults.prediction_log_max_bytes, 0, 1 << 40
            ),
            prediction_log_backups=reader.integer(
                "PREDICTION_LOG_BACKUPS", defaults.prediction_log_backups, 0, 1000
            ),
            inject_fault=reader.choice("SERVER_INJECT_FAULT", "", ("", "collector")),
        )
        settings.check()
        return settings

    @property
    def idle_threads(self) -> int:
        """Threads of the engine's alone-batch session (0: no second session)."""
        if self.ort_idle_threads is not None:
            return self.ort_idle_threads
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return cores if cores > self.ort_intra_op_threads else 0

    @property
    def inflight_limit(self) -> int:
        """Requests admitted at once (MAX_INFLIGHT_REQUESTS, or MAX_QUEUE_SIZE + INFERENCE_WORKERS)."""
        return self.max_inflight_requests or self.max_queue_size + self.inference_workers

    @property
    def prediction_log_stdout(self) -> bool:
        return self.prediction_log_path is not None and str(self.prediction_log_path) == "-"

    def batch_limits(self, device: str) -> tuple[int, int]:
        """``(max_batch_size, max_batch_tokens)`` for the device the model runs on."""
        if device == "cuda":
            return self.max_batch_size or self.gpu_max_batch_size, max(
                self.max_batch_tokens, self.gpu_max_batch_tokens
            )
        return self.max_batch_size or 1, self.max_batch_tokens

    def check(self) -> None:
        """Cross-field rules (also used when Settings are built in code, e.g. by tests)."""
        if self.max_queue_size < self.max_batch_items:
            raise SettingsError(
                f"MAX_QUEUE_SIZE ({self.max_queue_size}) must be at least MAX_BATCH_ITEMS "
                f"({self.max_batch_items}), otherwise a full /predict/batch request could never be queued; "
                "raise MAX_QUEUE_SIZE"
            )


class _Reader:
    """Typed, range-checked access to string env vars; every failure names the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def _get(self, name: str, default: _T, parse: Callable[[str], _T], expected: str) -> _T:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is invalid: expected {expected}") from None

    def text(self, name: str, default: str) -> str:
        return self._get(name, default, str, "a non-empty string")

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        value = self._get(name, default, int, f"an integer between {lo} and {hi}")
        if not lo <= value <= hi:
            raise SettingsError(f"{name}={value} is out of range: expected an integer between {lo} and {hi}")
        return value

    def optional_integer(self, name: str, lo: int, hi: int) -> int | None:
        if self._env.get(name, "").strip() in {"", "auto"}:
            return None
        return self.integer(name, lo, lo, hi)

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        value = self._get(name, default, float, f"a number between {lo:g} and {hi:g}")
        if not lo <= value <= hi:  # also rejects nan
            raise SettingsError(
                f"{name}={value} is out of range: expected a number between {lo:g} and {hi:g}"
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(raw)

        return self._get(name, default, parse, "one of true/false, 1/0, yes/no, on/off")

    def choice(self, name: str, default: str, options: tuple[str, ...], upper: bool = False) -> str:
        def parse(raw: str) -> str:
            value = raw.upper() if upper else raw.lower()
            if value not in options:
                raise ValueError(raw)
            return value

        return self._get(name, default, parse, "one of " + ", ".join(options))
