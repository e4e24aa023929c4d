"""HTTP handlers: translate requests into :class:`~server.service.PredictionService` calls and back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from server.schemas import (
    BatchPredictRequest,
    BatchPredictResponse,
    ErrorResponse,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
)
from server.service import PredictionService, Timings

if TYPE_CHECKING:
    from server.app import Runtime

__all__ = ["ROUTES"]


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    return request.app.state.runtime


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


def _service(request: Request[Any, Any, Any]) -> PredictionService:
    runtime = _runtime(request)
    if runtime.service is None:
        runtime.metrics.rejections.labels(reason="not_ready").inc()
        detail = "the model is still loading; retry when GET /ready answers 200"
        if runtime.status == "failed":
            detail = f"the model failed to load: {runtime.detail}"
        elif runtime.status == "stopping":
            detail = "the server is shutting down; retry on another instance"
        raise HTTPException(
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            detail=detail,
            headers={"Retry-After": str(runtime.settings.retry_after_s)},
        )
    return runtime.service


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
    400: ResponseSpec(
        ErrorResponse, description="Invalid JSON, not UTF-8, or a field is missing or of the wrong type."
    ),
    413: ResponseSpec(
        ErrorResponse, description="Body, text (MAX_TEXT_CHARS) or items (MAX_BATCH_ITEMS) too large."
    ),
    415: ResponseSpec(ErrorResponse, description="The body is not sent as application/json (UTF-8)."),
    422: ResponseSpec(ErrorResponse, description="`text` is empty or whitespace only."),
    429: ResponseSpec(
        ErrorResponse, description="The inference queue is full; retry after `Retry-After` seconds."
    ),
    503: ResponseSpec(
        ErrorResponse, description="The model is not loaded yet (see GET /ready) or shutting down."
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
async def predict(request: Request[Any, Any, Any], data: PredictRequest) -> Response[PredictResponse]:
    service = _service(request)
    (prediction,), timings = await service.predict([data], request_id=_request_id(request))
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
    request: Request[Any, Any, Any], data: BatchPredictRequest
) -> Response[BatchPredictResponse]:
    service = _service(request)
    limit = _runtime(request).settings.max_batch_items
    if len(data.items) > limit:
        raise HTTPException(
            status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            detail=f"items has {len(data.items)} entries, the limit is {limit} (MAX_BATCH_ITEMS); "
            "split the request",
        )
    predictions, timings = await service.predict(data.items, request_id=_request_id(request), batch=True)
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
async def ready(request: Request[Any, Any, Any]) -> Response[ReadyResponse]:
    runtime = _runtime(request)
    body = ReadyResponse(status=runtime.status, model_version=runtime.model_version, detail=runtime.detail)
    if runtime.status == "ready":
        return Response(body, status_code=200)
    return Response(
        body,
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(runtime.settings.retry_after_s)},
    )


@get("/metrics", summary="Prometheus metrics", tags=["operations"], media_type=METRICS_CONTENT_TYPE)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    return Response(_runtime(request).metrics.render(), media_type=METRICS_CONTENT_TYPE)


@get("/", include_in_schema=False, media_type="text/html; charset=utf-8")
async def index(request: Request[Any, Any, Any]) -> Response[str]:
    return Response(_runtime(request).index_html, media_type="text/html; charset=utf-8")


ROUTES = [predict, predict_batch, health, ready, metrics, index]
