"""Request and response bodies of the HTTP API (msgspec Structs: Litestar decodes, validates, documents)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

__all__ = [
    "BatchPredictRequest",
    "BatchPredictResponse",
    "ErrorResponse",
    "HealthResponse",
    "InfoResponse",
    "PredictRequest",
    "PredictResponse",
    "ReadyResponse",
]

_EXAMPLE_TEXT = (
    "Since this morning our payment gateway rejects every card; customers cannot check out. Please help!"
)


class PredictRequest(msgspec.Struct):
    """One ticket: the body in ``text`` and an optional ``subject`` (unknown keys are ignored)."""

    text: Annotated[
        str,
        Meta(
            description="The ticket body (must contain non-whitespace characters).", examples=[_EXAMPLE_TEXT]
        ),
    ]
    subject: Annotated[
        str | None, Meta(description="The ticket subject, if any.", examples=["Checkout down"])
    ] = None
    truncate: Annotated[
        bool,
        Meta(
            description="Cut the text to the model's max length (default). `false`: a longer text is "
            "refused with 413 and its token count, as in text-embeddings-inference."
        ),
    ] = True
    raw_scores: Annotated[
        bool,
        Meta(description="Also return the raw (uncalibrated) logits per label in `raw_scores`."),
    ] = False


class BatchItem(msgspec.Struct):
    """One ticket of a batch."""

    text: Annotated[str, Meta(description="The ticket body (must contain non-whitespace characters).")]
    subject: Annotated[str | None, Meta(description="The ticket subject, if any.")] = None


class BatchPredictRequest(msgspec.Struct):
    """Several tickets; answers come back in the same order (at most MAX_BATCH_ITEMS, else 413)."""

    items: Annotated[list[BatchItem], Meta(min_length=1, description="1..MAX_BATCH_ITEMS tickets.")]
    truncate: Annotated[
        bool, Meta(description="As on /predict: `false` refuses any item over the max length with 413.")
    ] = True
    raw_scores: Annotated[bool, Meta(description="As on /predict: add the raw logits per label.")] = False


class PredictResponse(msgspec.Struct, omit_defaults=True):
    label: Annotated[str, Meta(description="The predicted label.", examples=["high"])]
    label_id: Annotated[int, Meta(description="Index of the label in the model's label list.", examples=[2])]
    confidence: Annotated[float, Meta(description="Probability of the predicted label.", examples=[0.83])]
    scores: Annotated[
        dict[str, float],
        Meta(
            description="Probability of every label.", examples=[{"low": 0.05, "medium": 0.12, "high": 0.83}]
        ),
    ]
    truncated: Annotated[bool, Meta(description="True when the text was cut to the model's max length.")]
    needs_review: Annotated[
        bool,
        Meta(
            description="True when `confidence` is below the bundle's review threshold (manifest `review`): "
            "route the ticket to a person. Always false for a bundle without a review block."
        ),
    ]
    model_version: Annotated[str, Meta(description="The bundle's model_version.")]
    raw_scores: Annotated[
        dict[str, float] | None,
        Meta(
            description="Only with `raw_scores: true`: the model's raw logits z per label, before "
            "calibration (`scores` are softmax((z + bias) / temperature))."
        ),
    ] = None


class BatchPredictResponse(msgspec.Struct):
    predictions: list[PredictResponse]


class HealthResponse(msgspec.Struct):
    status: str = "ok"


class ReadyResponse(msgspec.Struct):
    status: Annotated[str, Meta(description="`ready`, `loading`, `failed` or `stopping`.")]
    model_version: str | None = None
    detail: str | None = None


class ErrorResponse(msgspec.Struct, omit_defaults=True):
    """Every error answer (4xx/5xx) has this shape: the status, a stable ``error_type``, what went wrong and
    what to do (``detail``), and where when a field is at fault (``extra``)."""

    status_code: int
    error_type: Annotated[
        str,
        Meta(
            description="invalid_json, unsupported_media_type, validation, too_large, not_found, "
            "method_not_allowed, inference, overloaded, unavailable, timeout or internal."
        ),
    ]
    detail: str
    extra: Any = None


class Limits(msgspec.Struct):
    max_batch_items: int
    max_text_chars: int
    max_queue_size: int
    max_inflight_requests: int
    max_batch_size: int
    request_timeout_s: float


class InfoResponse(msgspec.Struct):
    """What is served (GET /info), after text-embeddings-inference's /info."""

    model_version: str
    model_name: str
    target: str
    labels: list[str]
    max_length: int
    quantization: dict[str, Any] | None
    dtype: str
    device: Annotated[str, Meta(description="`cpu` or `cuda`: where the model runs now.")]
    providers: list[str]
    metrics: Annotated[dict[str, Any] | None, Meta(description="The export gate's metrics (manifest).")]
    calibration: dict[str, Any] | None
    review: dict[str, Any] | None
    limits: Limits
    created_at: str
