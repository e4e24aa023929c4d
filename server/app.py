"""The Litestar app factory: wires the runtime (server.runtime), the admission control (server.admission),
the request middleware, the error table (server.errors) and the routes (server.routes).

No module global holds a model: the app's lifespan drives the :class:`~server.runtime.Runtime`, which routes
receive through the ``runtime`` dependency.
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
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.admission import ADMITTED_PATHS, AdmissionMiddleware
from server.bundle import Bundle, BundleError, load_bundle
from server.errors import EXCEPTION_HANDLERS
from server.metrics import Metrics
from server.routes import ROUTES
from server.runtime import EngineFactory, Runtime
from server.settings import Settings, SettingsError

__all__ = ["EngineFactory", "Runtime", "create_app", "create_app_from_env"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("server.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_UNMATCHED = "<unmatched>"


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
    """App-level hook: responses that never reached a route (404, 405, admission refusals) get an
    X-Request-ID and are counted."""

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers", []))
        counted = "request_id" in scope.get("state", {})
        if not any(name.lower() == b"x-request-id" for name, _ in headers):
            request_id = _incoming_request_id(scope) or uuid.uuid4().hex
            headers.append((b"x-request-id", request_id.encode()))
            message["headers"] = headers
        if not counted:
            metrics.http_requests.labels(
                route=scope["path"] if scope.get("path") in ADMITTED_PATHS else _UNMATCHED,
                method=scope.get("method", ""),
                status=str(message["status"]),
            ).inc()

    return hook


def create_app(
    settings: Settings,
    *,
    bundle: Bundle | None = None,
    engine_factory: EngineFactory | None = None,
    on_fatal: Callable[[str], None] | None = None,
) -> Litestar:
    """Build the app.

    ``bundle``: an already verified bundle (skips re-verification); ``engine_factory``: how the engine is
    created (default :meth:`Engine.load` with EXECUTION_PROVIDER); ``on_fatal``: called with the message when
    loading fails or the micro-batcher dies.
    """
    runtime = Runtime(settings, bundle, engine_factory, on_fatal)

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

    def provide_runtime() -> Runtime:
        return runtime

    # big enough for a full batch of maximal tickets with JSON escapes; larger bodies get 413 before parsing
    max_body = max(1 << 20, settings.max_batch_items * settings.max_text_chars * 2 * 6 + (64 << 10))
    app = Litestar(
        route_handlers=ROUTES,
        lifespan=[lifespan],
        dependencies={"runtime": Provide(provide_runtime, sync_to_thread=False)},
        middleware=[
            DefineMiddleware(RequestMiddleware, metrics=runtime.metrics, request_log=settings.request_log)
        ],
        before_send=[_before_send(runtime.metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
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
    app.state.runtime = runtime  # for tests and the process entry point; routes get it injected
    # admission control runs before Litestar's routing, exception handling and body parsing
    app.asgi_handler = AdmissionMiddleware(app.asgi_handler, runtime)
    return app


def create_app_from_env() -> Litestar:
    """App factory for ASGI servers' command lines, e.g. ``uvicorn --factory server.app:create_app_from_env``.

    Reads the same env vars as ``python -m server`` and verifies the bundle before serving; invalid settings
    or bundle stop the server with one message. If the model then fails to load (or the batcher dies), the
    process asks itself to stop (SIGTERM). Logging and signals are the ASGI server's; ``python -m server`` is
    the recommended entry (one shutdown budget, exit codes).
    """
    try:
        settings = Settings.from_env()
        bundle = load_bundle(settings.model_dir)
    except (SettingsError, BundleError) as exc:
        raise SystemExit(f"server: {exc}") from None

    def stop(message: str) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    return create_app(settings, bundle=bundle, on_fatal=stop)
