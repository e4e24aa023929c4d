"""Domain errors -> HTTP, in one table: every error answer has the :class:`~server.schemas.ErrorResponse`
shape (``status_code``, ``error_type``, ``detail``, optional ``extra``).

Status codes follow text-embeddings-inference: 400 not JSON / not UTF-8, 413 too long or too many, 415 not
JSON, 422 the body fails the schema or a text is empty, 424 inference failed, 429 queue full, 503 not ready,
stopping or past the request deadline, 500 a server bug (logged, no internals in the answer).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.types import ExceptionHandlersMap

from server.batching import BatcherClosedError, BatcherDeadError, InferenceError, QueueFullError
from server.service import RequestTimeoutError, TextTooLongError, TicketError, TokensOverLimitError

__all__ = ["ERROR_TYPES", "EXCEPTION_HANDLERS", "ServiceUnavailableError", "error_body", "error_response"]

logger = logging.getLogger(__name__)

ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_json",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation",
    424: "inference",
    429: "overloaded",
    500: "internal",
    503: "unavailable",
}

_encoder = msgspec.json.Encoder()


class ServiceUnavailableError(RuntimeError):
    """Not ready (loading, failed) or stopping: 503 with Retry-After."""

    def __init__(self, detail: str, retry_after_s: int, error_type: str = "unavailable") -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.error_type = error_type


def _body(status_code: int, detail: str, extra: Any = None, error_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status_code": status_code,
        "error_type": error_type
        or ERROR_TYPES.get(status_code, "internal" if status_code >= 500 else "error"),
        "detail": detail,
    }
    if extra is not None:
        body["extra"] = extra
    return body


def error_body(status_code: int, detail: str, error_type: str | None = None) -> bytes:
    """The encoded error JSON (the admission middleware pre-encodes its answers once)."""
    return _encoder.encode(_body(status_code, detail, error_type=error_type))


def error_response(
    status_code: int,
    detail: str,
    extra: Any = None,
    headers: dict[str, str] | None = None,
    error_type: str | None = None,
) -> Response[dict[str, Any]]:
    return Response(_body(status_code, detail, extra, error_type), status_code=status_code, headers=headers)


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    detail = exc.detail
    status = exc.status_code
    if isinstance(exc.__cause__, SerializationException):
        status = 400
        detail = f"the body is not valid JSON ({detail}); send one JSON object"
    elif isinstance(exc, ValidationException) and detail.startswith("Validation failed for"):
        status = 422
        detail = f"{detail}: the body does not match the schema (see `extra` and GET /schema)"
    return error_response(status, detail, exc.extra or None, headers=exc.headers)


def _not_utf8(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[dict[str, Any]]:
    return error_response(
        400,
        f"the body is not valid UTF-8 (byte {exc.object[exc.start : exc.start + 1]!r} at position "
        f"{exc.start}); JSON bodies must be UTF-8",
    )


def _ticket_error(request: Request[Any, Any, Any], exc: TicketError) -> Response[dict[str, Any]]:
    status = 413 if isinstance(exc, TextTooLongError | TokensOverLimitError) else 422
    extra: dict[str, Any] = {"key": exc.field, "message": exc.message}
    if isinstance(exc, TokensOverLimitError):
        extra.update(n_tokens=exc.n_tokens, max_length=exc.max_length)
    return error_response(status, f"{exc.field} {exc.message}", [extra])


def _queue_full(request: Request[Any, Any, Any], exc: QueueFullError) -> Response[dict[str, Any]]:
    return error_response(429, f"the server is busy: {exc}", headers={"Retry-After": str(exc.retry_after_s)})


def _closed(request: Request[Any, Any, Any], exc: BatcherClosedError) -> Response[dict[str, Any]]:
    return error_response(503, f"{exc}; retry on another instance", headers={"Retry-After": "1"})


def _dead(request: Request[Any, Any, Any], exc: BatcherDeadError) -> Response[dict[str, Any]]:
    return error_response(
        503, f"{exc}; the instance is restarting, retry on another one", headers={"Retry-After": "1"}
    )


def _unavailable(request: Request[Any, Any, Any], exc: ServiceUnavailableError) -> Response[dict[str, Any]]:
    return error_response(
        503, exc.detail, headers={"Retry-After": str(exc.retry_after_s)}, error_type=exc.error_type
    )


def _timeout(request: Request[Any, Any, Any], exc: RequestTimeoutError) -> Response[dict[str, Any]]:
    return error_response(503, str(exc), headers={"Retry-After": "1"}, error_type="timeout")


def _request_id(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def _inference_failed(request: Request[Any, Any, Any], exc: InferenceError) -> Response[dict[str, Any]]:
    request_id = _request_id(request)
    logger.error("inference failed (request_id=%s): %r", request_id, exc.__cause__ or exc)
    return error_response(
        424, f"inference failed for this request; it is logged under request id {request_id}"
    )


def _server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Catch-all for genuine server bugs: log the traceback, answer a JSON 500 without internals."""
    if isinstance(exc, HTTPException):
        return _http_exception(request, exc)
    request_id = _request_id(request)
    logger.error(
        "unhandled error on %s %s (request_id=%s)", request.method, request.url.path, request_id, exc_info=exc
    )
    return error_response(500, f"internal server error; it is logged under request id {request_id}")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: _http_exception,
    UnicodeDecodeError: _not_utf8,
    TicketError: _ticket_error,
    QueueFullError: _queue_full,
    BatcherClosedError: _closed,
    BatcherDeadError: _dead,
    ServiceUnavailableError: _unavailable,
    RequestTimeoutError: _timeout,
    InferenceError: _inference_failed,
    500: _server_error,
}
