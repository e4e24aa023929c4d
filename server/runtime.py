"""The runtime: the long-lived state of one app (settings, metrics, status, engine, batcher, prediction log)
and its lifecycle (load -> ready -> stopping). The app's lifespan drives it; routes receive it by dependency
injection (``Provide``) and never reach into ``app.state``.

Start-up: the HTTP server answers at once (``/health`` 200, ``/ready`` 503 "loading"); :meth:`Runtime.load`
verifies the bundle (unless the caller already did), creates the ORT session and tokenizer in a thread, runs
one warm-up inference, starts the micro-batcher, and only then reports ready.

Faults: a failed load or a dead micro-batcher set ``failed`` (``/ready`` 503) and call ``on_fatal``, which
``python -m server`` turns into a non-zero exit so the platform restarts the instance.

Shutdown: one budget, SHUTDOWN_TIMEOUT_S, from the moment the signal arrived (:meth:`begin_shutdown`) across
the HTTP drain, the batcher and the prediction-log flush; 0 means "stop now", never "wait forever".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, Literal

import msgspec

from server.batching import BatchConfig, MicroBatcher
from server.bundle import Bundle, BundleError, load_bundle
from server.engine import Engine
from server.errors import ServiceUnavailableError
from server.metrics import Metrics
from server.predlog import PredictionLog
from server.service import PredictionService
from server.settings import Settings

__all__ = ["EngineFactory", "Runtime", "Status"]

logger = logging.getLogger(__name__)

EngineFactory = Callable[[Bundle, int], Engine]
Status = Literal["loading", "ready", "failed", "stopping"]


class Runtime:
    """Per-app state: settings, metrics, status, and (once loaded) the prediction service."""

    def __init__(
        self,
        settings: Settings,
        bundle: Bundle | None = None,
        engine_factory: EngineFactory | None = None,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.status: Status = "loading"
        self.detail: str | None = None
        self.model_version: str | None = None
        self.service: PredictionService | None = None
        self.engine: Engine | None = None
        self.inflight = 0  # admitted prediction requests (the admission middleware counts)
        self.index_html = (resources.files("server") / "static" / "index.html").read_text(encoding="utf-8")
        self._bundle = bundle
        self._engine_factory: EngineFactory = engine_factory or functools.partial(
            Engine.load, provider=settings.execution_provider, idle_threads=settings.idle_threads
        )
        self._on_fatal = on_fatal
        self._batcher: MicroBatcher | None = None
        self._prediction_log: PredictionLog | None = None
        self._shutdown_deadline: float | None = None

    @property
    def batcher(self) -> MicroBatcher | None:
        return self._batcher

    async def load(self) -> None:
        """Verify + load the bundle, warm up, start batching; on failure: 'failed' and ``on_fatal``."""
        started = time.perf_counter()
        settings = self.settings
        try:
            bundle = self._bundle
            if bundle is None:
                bundle = await asyncio.to_thread(load_bundle, settings.model_dir)
            engine = await asyncio.to_thread(self._engine_factory, bundle, settings.ort_intra_op_threads)
            await asyncio.to_thread(engine.warm_up)
        except BundleError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:
            logger.exception("unexpected error while loading the model")
            self._fail(f"unexpected error while loading the model from {settings.model_dir}: {exc!r}")
            return
        if self.status == "stopping":
            return
        max_batch_size, max_batch_tokens = settings.batch_limits(engine.device)
        self._batcher = MicroBatcher(
            engine.infer,
            BatchConfig(
                max_batch_size=max_batch_size,
                max_batch_tokens=max_batch_tokens,
                max_wait_ms=settings.batch_max_wait_ms,
                max_queue_size=settings.max_queue_size,
                workers=settings.inference_workers,
                retry_after_min_s=settings.retry_after_s,
                inject_fault=settings.inject_fault,
            ),
            self.metrics,
            on_dead=self._batcher_died,
            run_alone=engine.infer_idle if engine.has_idle_session else None,
        )
        self._batcher.start()
        if settings.prediction_log_path is not None:
            self._prediction_log = PredictionLog(
                settings.prediction_log_path,
                include_text=settings.prediction_log_text,
                queue_size=settings.prediction_log_queue_size,
                on_drop=self.metrics.prediction_log_dropped.inc,
                max_bytes=settings.prediction_log_max_bytes,
                backups=settings.prediction_log_backups,
            )
            self._prediction_log.start()
        self.engine = engine
        self.service = PredictionService(
            engine,
            self._batcher,
            self.metrics,
            settings.max_text_chars,
            self._prediction_log,
            request_timeout_s=settings.request_timeout_s,
        )
        self.model_version = engine.model_version
        self.metrics.model_info.labels(model_version=engine.model_version).set(1)
        self.metrics.ready.set(1)
        self.status = "ready"
        logger.info(
            "ready: model %s (%d labels, max_length %d) on %s, batches of up to %d, %d intra-op thread(s) "
            "per batch (%d when a batch runs alone), loaded and warmed up in %.2f s",
            engine.model_version,
            len(engine.labels),
            engine.max_length,
            engine.providers[0],
            max_batch_size,
            settings.ort_intra_op_threads,
            max(engine.idle_threads, settings.ort_intra_op_threads),
            time.perf_counter() - started,
        )

    def require_service(self) -> PredictionService:
        """The service, or :class:`ServiceUnavailableError` (503) saying why there is none."""
        service = self.service
        if service is not None and self.status == "ready":
            return service
        self.metrics.rejections.labels(reason="not_ready").inc()
        raise ServiceUnavailableError(self.unavailable_detail(), self.settings.retry_after_s)

    def unavailable_detail(self) -> str:
        if self.status == "failed":
            return f"the model cannot be served: {self.detail}"
        if self.status == "stopping":
            return "the server is shutting down; retry on another instance"
        return "the model is still loading; retry when GET /ready answers 200"

    def retry_after_s(self) -> int:
        batcher = self._batcher
        return batcher.retry_after_s() if batcher is not None else self.settings.retry_after_s

    def info(self) -> dict[str, Any]:
        """The body of GET /info (raises 503 before the model is loaded)."""
        engine = self.engine
        if engine is None or self.status not in {"ready", "stopping"}:
            raise ServiceUnavailableError(self.unavailable_detail(), self.settings.retry_after_s)
        m = engine.manifest
        settings = self.settings
        max_batch_size, _ = settings.batch_limits(engine.device)
        return {
            "model_version": m.model_version,
            "model_name": m.model_name,
            "target": m.target,
            "labels": list(m.labels),
            "max_length": m.max_length,
            "quantization": m.quantization,
            "dtype": m.dtype,
            "device": engine.device,
            "providers": engine.providers,
            "metrics": m.metrics,
            "calibration": msgspec.to_builtins(m.calibration) if m.calibration is not None else None,
            "review": msgspec.to_builtins(m.review) if m.review is not None else None,
            "limits": {
                "max_batch_items": settings.max_batch_items,
                "max_text_chars": settings.max_text_chars,
                "max_queue_size": settings.max_queue_size,
                "max_inflight_requests": settings.inflight_limit,
                "max_batch_size": max_batch_size,
                "request_timeout_s": settings.request_timeout_s,
            },
            "created_at": m.created_at,
        }

    def _fail(self, message: str) -> None:
        self.status = "failed"
        self.detail = message
        self.service = None
        self.metrics.ready.set(0)
        logger.error("cannot serve the model: %s", message)
        if self._on_fatal is not None:
            self._on_fatal(message)

    def _batcher_died(self, error: BaseException) -> None:
        self._fail(f"the micro-batcher died ({error!r}); the process exits so that it is restarted")

    def begin_shutdown(self) -> None:
        """The shutdown signal arrived: not ready from now on, and the one shutdown budget starts."""
        if self._shutdown_deadline is None:
            self._shutdown_deadline = time.monotonic() + self.settings.shutdown_timeout_s
            # shortly before the HTTP drain's share of the budget ends, queued items get 503 so that their
            # requests are answered (uvicorn would cancel them without an answer)
            with contextlib.suppress(RuntimeError):  # no running loop: nothing is queued
                drain = max(
                    0.0, self.settings.shutdown_timeout_s - min(1.0, 0.1 * self.settings.shutdown_timeout_s)
                )
                asyncio.get_running_loop().call_later(max(0.0, drain - 0.5), self._expire_queue)
        if self.status != "failed":
            self.status = "stopping"
        self.metrics.ready.set(0)

    def _expire_queue(self) -> None:
        if self._batcher is not None:
            n = self._batcher.expire_pending()
            if n:
                logger.warning("shutdown budget nearly spent: %d queued items answered 503", n)

    def remaining_shutdown_s(self) -> float:
        if self._shutdown_deadline is None:
            return self.settings.shutdown_timeout_s
        return max(0.0, self._shutdown_deadline - time.monotonic())

    async def close(self) -> None:
        """Finish queued work and flush the prediction log within what is left of the shutdown budget."""
        self.begin_shutdown()
        self.service = None
        if self._batcher is not None:
            await self._batcher.close(timeout_s=self.remaining_shutdown_s())
            self._batcher = None
        if self._prediction_log is not None:
            await asyncio.to_thread(self._prediction_log.close, self.remaining_shutdown_s())
            self._prediction_log = None
