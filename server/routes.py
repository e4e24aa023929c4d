"""HTTP handlers: translate requests into :class:`~server.service.PredictionService` calls and back.

The :class:`~server.runtime.Runtime` is injected (``runtime`` dependency, see ``server.app``); errors are
mapped to HTTP in ``server.errors``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.static_files import create_static_files_router
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import Receive

from server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from server.runtime import Runtime
from server.schemas import (
    BatchPredictRequest,
    BatchPredictResponse,
    ErrorResponse,
    HealthResponse,
    InfoResponse,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
)
from server.service import ClientDisconnectedError, Timings

__all__ = ["ROUTES", "SECURITY_HEADERS", "STATIC_DIR"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
# the page and its files: scripts and styles from this origin only (no inline code), no framing
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


async def _until_disconnect(receive: Receive) -> None:
    """Returns when the client has gone (the body was read already, so the next message is the disconnect)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _request_id(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def require_json(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard (runs before the body is read): only non-empty JSON bodies in UTF-8 (else 415 or 400)."""
    raw = connection.headers.get("content-type")
    if not raw:
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="the Content-Type header is missing: send the body as JSON with "
            "Content-Type: application/json",
        )
    media_type, options = Request(connection.scope).content_type
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"Content-Type {media_type!r} is not supported: send the body as JSON with "
            "Content-Type: application/json",
        )
    charset = options.get("charset", "utf-8").lower()
    if charset not in {"utf-8", "utf8"}:
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"charset {charset!r} is not supported: JSON bodies must be UTF-8",
        )
    if connection.headers.get("content-length") == "0":
        raise HTTPException(
            status_code=HTTP_400_BAD_REQUEST,
            detail='the body is empty (not valid JSON): send one JSON object such as {"text": "..."}',
        )


def _timing_headers(timings: Timings) -> dict[str, str]:
    tok, queue, inf = (
        round(x * 1000.0, 3) for x in (timings.tokenization_s, timings.queue_s, timings.inference_s)
    )
    return {
        "X-Tokenization-Time-Ms": f"{tok:.3f}",
        "X-Queue-Time-Ms": f"{queue:.3f}",
        "X-Inference-Time-Ms": f"{inf:.3f}",
        "Server-Timing": f"tok;dur={tok:.3f}, queue;dur={queue:.3f}, inf;dur={inf:.3f}",
    }


_ERRORS = {
    400: ResponseSpec(ErrorResponse, description="The body is empty, not valid JSON, or not UTF-8."),
    413: ResponseSpec(
        ErrorResponse,
        description="Body, text (MAX_TEXT_CHARS) or items (MAX_BATCH_ITEMS) too large, or `truncate: false` "
        "and the text has more tokens than the model's max length (`extra` has `n_tokens`).",
    ),
    415: ResponseSpec(ErrorResponse, description="The body is not sent as application/json (UTF-8)."),
    422: ResponseSpec(
        ErrorResponse,
        description="The body does not match the schema (a field missing or of the wrong type), or `text` "
        "is empty or whitespace only.",
    ),
    424: ResponseSpec(ErrorResponse, description="Inference failed (logged under the request id)."),
    429: ResponseSpec(
        ErrorResponse,
        description="At capacity; retry after `Retry-After` seconds (the time the queue needs to drain).",
    ),
    503: ResponseSpec(
        ErrorResponse,
        description="The model is not loaded yet (see GET /ready), failed, the server is shutting down, or "
        "the request was not answered within REQUEST_TIMEOUT_S (`error_type` `timeout`).",
    ),
}


@post(
    "/predict",
    guards=[require_json],
    status_code=200,
    responses=_ERRORS,
    summary="Predict the priority of one ticket",
    tags=["prediction"],
)
async def predict(
    request: Request[Any, Any, Any], data: PredictRequest, runtime: Runtime
) -> Response[PredictResponse]:
    service = runtime.require_service()
    try:
        (prediction,), timings = await service.predict(
            [data],
            request_id=_request_id(request),
            truncate=data.truncate,
            raw_scores=data.raw_scores,
            disconnected=lambda: _until_disconnect(request.receive),
        )
    except ClientDisconnectedError:
        return Response(None, status_code=204)  # type: ignore[arg-type]  # the client has gone
    return Response(prediction, headers=_timing_headers(timings))


@post(
    "/predict/batch",
    guards=[require_json],
    status_code=200,
    responses=_ERRORS,
    summary="Predict the priority of several tickets (answers in input order)",
    tags=["prediction"],
)
async def predict_batch(
    request: Request[Any, Any, Any], data: BatchPredictRequest, runtime: Runtime
) -> Response[BatchPredictResponse]:
    service = runtime.require_service()
    limit = runtime.settings.max_batch_items
    if len(data.items) > limit:
        raise HTTPException(
            status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            detail=f"items has {len(data.items)} entries, the limit is {limit} (MAX_BATCH_ITEMS); "
            "split the request",
        )
    try:
        predictions, timings = await service.predict(
            data.items,
            request_id=_request_id(request),
            batch=True,
            truncate=data.truncate,
            raw_scores=data.raw_scores,
            disconnected=lambda: _until_disconnect(request.receive),
        )
    except ClientDisconnectedError:
        return Response(None, status_code=204)  # type: ignore[arg-type]
    return Response(BatchPredictResponse(predictions=predictions), headers=_timing_headers(timings))


@get("/health", summary="Liveness: the process is up", tags=["operations"])
async def health() -> HealthResponse:
    return HealthResponse()


@get(
    "/ready",
    summary="Readiness: 200 once the model is loaded and a warm-up inference ran, else 503",
    tags=["operations"],
    responses={503: ResponseSpec(ReadyResponse, description="Loading, or the model failed to load.")},
)
async def ready(runtime: Runtime) -> Response[ReadyResponse]:
    body = ReadyResponse(status=runtime.status, model_version=runtime.model_version, detail=runtime.detail)
    if runtime.status == "ready":
        return Response(body, status_code=200)
    if runtime.status == "failed":
        return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE)
    return Response(
        body,
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(runtime.settings.retry_after_s)},
    )


@get(
    "/info",
    summary="What is served: model version, labels, max length, quantization, gate metrics, limits",
    tags=["operations"],
    responses={503: ResponseSpec(ErrorResponse, description="The model is not loaded (yet).")},
)
async def info(runtime: Runtime) -> InfoResponse:
    return msgspec.convert(runtime.info(), InfoResponse)


@get("/metrics", summary="Prometheus metrics", tags=["operations"], media_type=METRICS_CONTENT_TYPE)
async def metrics(runtime: Runtime) -> Response[bytes]:
    return Response(runtime.metrics.render(), media_type=METRICS_CONTENT_TYPE)


@get("/", include_in_schema=False, media_type="text/html; charset=utf-8")
async def index(runtime: Runtime) -> Response[str]:
    return Response(runtime.index_html, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


async def _security_headers(response: Response[Any]) -> Response[Any]:
    response.headers.update(SECURITY_HEADERS)
    return response


static_files = create_static_files_router(
    path="/static",
    directories=[STATIC_DIR],
    include_in_schema=False,
    name="static",
    after_request=_security_headers,
)

ROUTES: list[Any] = [predict, predict_batch, health, ready, info, metrics, index, static_files]
