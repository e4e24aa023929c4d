"""The Litestar app factory. The app's lifespan owns the engine; no module global holds a model.

Start-up order: the HTTP server answers at once (``/health`` 200, ``/ready`` 503 "loading"); a background
task verifies the bundle (unless the caller already did), creates the ORT session and tokenizer in a thread,
runs one warm-up inference, starts the micro-batcher, and only then reports ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any, Literal

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.batching import BatchConfig, BatcherClosedError, MicroBatcher, QueueFullError
from server.bundle import Bundle, BundleError, load_bundle
from server.engine import Engine
from server.metrics import Metrics
from server.predlog import PredictionLog
from server.routes import ROUTES
from server.service import PredictionService, TextTooLongError, TicketError
from server.settings import Settings, SettingsError

__all__ = ["EngineFactory", "Runtime", "create_app", "create_app_from_env"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("server.access")

EngineFactory = Callable[[Bundle, int], Engine]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_UNMATCHED = "<unmatched>"


class Runtime:
    """Per-app state: settings, metrics, and (once loaded) the prediction service."""

    def __init__(
        self,
        settings: Settings,
        bundle: Bundle | None,
        engine_factory: EngineFactory,
        on_fatal: Callable[[str], None] | None,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.status: Literal["loading", "ready", "failed", "stopping"] = "loading"
        self.detail: str | None = None
        self.model_version: str | None = None
        self.service: PredictionService | None = None
        self.index_html = (resources.files("server") / "static" / "index.html").read_text(encoding="utf-8")
        self._bundle = bundle
        self._engine_factory = engine_factory
        self._on_fatal = on_fatal
        self._batcher: MicroBatcher | None = None
        self._prediction_log: PredictionLog | None = None

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
        self._batcher = MicroBatcher(
            engine.infer,
            BatchConfig(
                max_batch_size=settings.max_batch_size,
                max_batch_tokens=settings.max_batch_tokens,
                max_wait_ms=settings.batch_max_wait_ms,
                max_queue_size=settings.max_queue_size,
                workers=settings.inference_workers,
            ),
            self.metrics,
        )
        self._batcher.start()
        if settings.prediction_log_path is not None:
            self._prediction_log = PredictionLog(
                settings.prediction_log_path,
                include_text=settings.prediction_log_text,
                queue_size=settings.prediction_log_queue_size,
                on_drop=self.metrics.prediction_log_dropped.inc,
            )
            self._prediction_log.start()
        self.service = PredictionService(
            engine, self._batcher, self.metrics, settings.max_text_chars, self._prediction_log
        )
        self.model_version = engine.model_version
        self.metrics.model_info.labels(model_version=engine.model_version).set(1)
        self.metrics.ready.set(1)
        self.status = "ready"
        logger.info(
            "ready: model %s (%d labels, max_length %d) loaded and warmed up in %.2f s",
            engine.model_version,
            len(engine.labels),
            engine.max_length,
            time.perf_counter() - started,
        )

    def _fail(self, message: str) -> None:
        self.status = "failed"
        self.detail = message
        logger.error("cannot serve the model: %s", message)
        if self._on_fatal is not None:
            self._on_fatal(message)

    async def close(self) -> None:
        self.service = None
        if self.status != "failed":
            self.status = "stopping"
        self.metrics.ready.set(0)
        if self._batcher is not None:
            await self._batcher.close(timeout_s=max(self.settings.shutdown_timeout_s, 1.0))
            self._batcher = None
        if self._prediction_log is not None:
            await asyncio.to_thread(self._prediction_log.close)
            self._prediction_log = None


class RequestMiddleware:
    """Per-route ASGI middleware: request id, HTTP metrics by route template, optional access log."""

    def __init__(self, app: ASGIApp, metrics: Metrics, request_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.request_log = request_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", ""))
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = HTTP_500_INTERNAL_SERVER_ERROR

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or _UNMATCHED
            labels = {"route": route, "method": method, "status": str(status)}
            self.metrics.http_requests.labels(**labels).inc()
            self.metrics.http_latency.labels(**labels).observe(elapsed)
            if self.request_log:
                access_logger.info(
                    "%s %s %d %.1fms request_id=%s",
                    method,
                    scope["path"],
                    status,
                    elapsed * 1000,
                    request_id,
                )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1").strip()
            return candidate if _REQUEST_ID.match(candidate) else None
    return None


def _before_send(metrics: Metrics) -> Callable[[Message, Scope], Any]:
    """App-level hook: responses that never reached a route (404, 405) get an X-Request-ID and are counted."""

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers", []))
        if any(name.lower() == b"x-request-id" for name, _ in headers):
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        headers.append((b"x-request-id", request_id.encode()))
        message["headers"] = headers
        if "request_id" not in scope.get("state", {}):
            metrics.http_requests.labels(
                route=_UNMATCHED, method=scope.get("method", ""), status=str(message["status"])
            ).inc()

    return hook


def _error(
    request: Request[Any, Any, Any],
    status_code: int,
    detail: str,
    extra: Any = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status_code": status_code, "detail": detail}
    if extra is not None:
        body["extra"] = extra
    return Response(body, status_code=status_code, headers=headers)


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    detail = exc.detail
    if isinstance(exc, ValidationException) and detail.startswith("Validation failed for"):
        detail = f"{detail}: the body does not match the schema (see `extra` and GET /schema)"
    elif isinstance(exc.__cause__, SerializationException):
        detail = f"the body is not valid JSON ({detail}); send one JSON object"
    return _error(request, exc.status_code, detail, exc.extra or None, headers=exc.headers)


def _not_utf8(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[dict[str, Any]]:
    return _error(
        request,
        HTTP_400_BAD_REQUEST,
        f"the body is not valid UTF-8 (byte {exc.object[exc.start : exc.start + 1]!r} at position "
        f"{exc.start}); JSON bodies must be UTF-8",
    )


def _ticket_error(request: Request[Any, Any, Any], exc: TicketError) -> Response[dict[str, Any]]:
    status = 413 if isinstance(exc, TextTooLongError) else HTTP_422_UNPROCESSABLE_ENTITY
    return _error(request, status, f"{exc.field} {exc.message}", [{"key": exc.field, "message": exc.message}])


def _queue_full(request: Request[Any, Any, Any], exc: QueueFullError) -> Response[dict[str, Any]]:
    runtime: Runtime = request.app.state.runtime
    runtime.metrics.rejections.labels(reason="queue_full").inc()
    retry = str(runtime.settings.retry_after_s)
    return _error(
        request, HTTP_429_TOO_MANY_REQUESTS, f"the server is busy: {exc}", headers={"Retry-After": retry}
    )


def _closed(request: Request[Any, Any, Any], exc: BatcherClosedError) -> Response[dict[str, Any]]:
    return _error(
        request,
        HTTP_503_SERVICE_UNAVAILABLE,
        f"{exc}; retry on another instance",
        headers={"Retry-After": "1"},
    )


def _server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Catch-all for genuine server bugs: log the traceback, answer a JSON 500 without internals."""
    if isinstance(exc, HTTPException):
        return _http_exception(request, exc)
    request_id = request.scope.get("state", {}).get("request_id", "")
    logger.error(
        "unhandled error on %s %s (request_id=%s)", request.method, request.url.path, request_id, exc_info=exc
    )
    return _error(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        f"internal server error; it is logged under request id {request_id}",
    )


def create_app(
    settings: Settings,
    *,
    bundle: Bundle | None = None,
    engine_factory: EngineFactory | None = None,
    on_fatal: Callable[[str], None] | None = None,
) -> Litestar:
    """Build the app.

    ``bundle``: an already verified bundle (skips re-verification); ``engine_factory``: how the engine is
    created (default :meth:`Engine.load`); ``on_fatal``: called with the message when loading fails.
    """
    runtime = Runtime(settings, bundle, engine_factory or Engine.load, on_fatal)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        loader = asyncio.create_task(runtime.load(), name="load-model")
        try:
            yield
        finally:
            if not loader.done():
                loader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loader
            await runtime.close()

    # big enough for a full batch of maximal tickets with JSON escapes; larger bodies get 413 before parsing
    max_body = max(1 << 20, settings.max_batch_items * settings.max_text_chars * 2 * 6 + (64 << 10))
    app = Litestar(
        route_handlers=ROUTES,
        lifespan=[lifespan],
        middleware=[
            DefineMiddleware(RequestMiddleware, metrics=runtime.metrics, request_log=settings.request_log)
        ],
        before_send=[_before_send(runtime.metrics)],
        exception_handlers={
            HTTPException: _http_exception,
            UnicodeDecodeError: _not_utf8,
            TicketError: _ticket_error,
            QueueFullError: _queue_full,
            BatcherClosedError: _closed,
            HTTP_500_INTERNAL_SERVER_ERROR: _server_error,
        },
        openapi_config=OpenAPIConfig(
            title="ticket-triage",
            version="1",
            description="Predict the priority (low/medium/high) of a customer-support ticket.",
            path="/schema",
            render_plugins=[
                JsonRenderPlugin(path=["/", "/openapi.json"]),
                SwaggerRenderPlugin(path="/swagger"),
            ],
        ),
        request_max_body_size=max_body,
        logging_config=None,
        debug=False,
    )
    app.state.runtime = runtime
    return app


def create_app_from_env() -> Litestar:
    """App factory for ASGI servers' command lines, e.g. ``uvicorn --factory server.app:create_app_from_env``.

    Reads the same env vars as ``python -m server`` and verifies the bundle before serving; invalid settings
    or bundle stop the server with one message. If the model then fails to load, the process asks itself to
    stop (SIGTERM). Logging and signals are the ASGI server's; ``python -m server`` is the recommended entry.
    """
    try:
        settings = Settings.from_env()
        bundle = load_bundle(settings.model_dir)
    except (SettingsError, BundleError) as exc:
        raise SystemExit(f"server: {exc}") from None

    def stop(message: str) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    return create_app(settings, bundle=bundle, on_fatal=stop)
