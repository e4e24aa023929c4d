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


class BatchPredictRequest(msgspec.Struct):
    """Several tickets; answers come back in the same order (at most MAX_BATCH_ITEMS, else 413)."""

    items: Annotated[list[PredictRequest], Meta(min_length=1, description="1..MAX_BATCH_ITEMS tickets.")]


class PredictResponse(msgspec.Struct):
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
    model_version: Annotated[str, Meta(description="The bundle's model_version.")]


class BatchPredictResponse(msgspec.Struct):
    predictions: list[PredictResponse]


class HealthResponse(msgspec.Struct):
    status: str = "ok"


class ReadyResponse(msgspec.Struct):
    status: Annotated[str, Meta(description="`ready`, `loading`, `failed` or `stopping`.")]
    model_version: str | None = None
    detail: str | None = None


class ErrorResponse(msgspec.Struct):
    """Every error answer (4xx/5xx): what went wrong, and where when a field is at fault."""

    status_code: int
    detail: str
    extra: Any = None
