"""Admission control: the cheapest possible "no" under overload.

A raw ASGI middleware in front of Litestar's whole stack (routing, exception handling, body parsing,
validation, the request middleware's logging and metrics). For ``POST /predict`` and ``POST /predict/batch``
it admits a request only while fewer than MAX_INFLIGHT_REQUESTS are admitted and the batching queue has room;
otherwise it answers at once, without reading or parsing the body, with a pre-encoded JSON body:

- 429 + ``Retry-After`` (seconds for the queue to drain at the measured rate) when full,
- 503 + ``Retry-After`` when the model is not ready or the server is stopping.

Why: when clients retry at once, rejected requests arrive as fast as the server can refuse them; if a refusal
costs what a request costs (exception machinery, JSON encoding, middleware, logging), the model starves and
goodput collapses (issue 12: -71 % at 200 retrying clients). Here a refusal costs a few dict lookups.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from server.errors import error_body

if TYPE_CHECKING:
    from server.runtime import Runtime

__all__ = ["ADMITTED_PATHS", "AdmissionMiddleware"]

ADMITTED_PATHS = frozenset({"/predict", "/predict/batch"})
# a body bigger than this is not drained before answering: the connection is closed instead
_DRAIN_LIMIT = 1 << 20

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")
_BUSY = error_body(
    429,
    "the server is at capacity (MAX_INFLIGHT_REQUESTS / MAX_QUEUE_SIZE); retry after Retry-After seconds",
)


class AdmissionMiddleware:
    """Wraps the app's ASGI handler; counts admitted requests in ``runtime.inflight``."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self._limit = runtime.settings.inflight_limit
        self._queue_limit = runtime.settings.max_queue_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in ADMITTED_PATHS or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        runtime = self.runtime
        if runtime.status != "ready":
            runtime.metrics.rejected_requests.labels(reason="not_ready").inc()
            body = error_body(503, runtime.unavailable_detail())
            await _answer(scope, receive, send, 503, body, runtime.settings.retry_after_s)
            return
        batcher = runtime.batcher
        if runtime.inflight >= self._limit or (
            batcher is not None and batcher.queue_depth >= self._queue_limit
        ):
            runtime.metrics.rejected_requests.labels(reason="overloaded").inc()
            await _answer(scope, receive, send, 429, _BUSY, runtime.retry_after_s())
            return
        runtime.inflight += 1
        runtime.metrics.inflight.set(runtime.inflight)
        try:
            await self.app(scope, receive, send)
        finally:
            runtime.inflight -= 1
            runtime.metrics.inflight.set(runtime.inflight)


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID.match(value.strip()):
            return value.strip()
    return uuid.uuid4().hex.encode()


async def _answer(
    scope: Scope, receive: Receive, send: Send, status: int, body: bytes, retry_after: int
) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
        (b"x-request-id", _request_id(scope)),
    ]
    if not await _drain(scope, receive):
        headers.append((b"connection", b"close"))
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)


async def _drain(scope: Scope, receive: Receive) -> bool:
    """Read (and discard) a small body so the keep-alive connection stays usable; False for a big one."""
    length = -1
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return False
            break
    if length < 0:  # chunked or no body: do not guess, close the connection after the answer
        return not any(name == b"transfer-encoding" for name, _ in scope["headers"])
    if length > _DRAIN_LIMIT:
        return False
    more = length > 0
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return False
        more = message.get("more_body", False)
    return True
