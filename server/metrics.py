"""Prometheus metrics of one app instance, in its own registry (no global state: two apps in one process,
as in the tests, never collide). ``GET /metrics`` renders ``Metrics.render()``.

Names carry their unit (``_seconds``, ``_tokens``, ``_items``, ``_total``), per the Prometheus naming guide.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
PREFIX = "ticket_triage"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
_FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_TOKEN_BUCKETS = (8, 16, 32, 64, 96, 128, 192, 256, 384, 512)
_BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
_WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_PADDED_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


class Metrics:
    """Every metric the server exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.http_requests = Counter(
            f"{PREFIX}_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokenization_latency = Histogram(
            f"{PREFIX}_tokenization_duration_seconds",
            "Tokenization time of one request (all its items).",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.inference_latency = Histogram(
            f"{PREFIX}_inference_duration_seconds",
            "ONNX Runtime time of one micro-batch.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            f"{PREFIX}_queue_wait_seconds",
            "Time an item waited in the micro-batching queue.",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size_items",
            "Items per micro-batch sent to ONNX Runtime.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.padded_tokens = Histogram(
            f"{PREFIX}_batch_padded_tokens",
            "Tokens per micro-batch including padding (items x longest item).",
            buckets=_PADDED_BUCKETS,
            registry=r,
        )
        self.padding_tokens = Counter(
            f"{PREFIX}_padding_tokens_total",
            "Pad tokens fed to the model (padded minus real tokens); divide by batch_padded_tokens_sum.",
            registry=r,
        )
        self.inflight = Gauge(
            f"{PREFIX}_inflight_requests",
            "Prediction requests admitted and not yet answered.",
            registry=r,
        )
        self.input_tokens = Histogram(
            f"{PREFIX}_input_tokens",
            "Tokens per model input after truncation.",
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.truncations = Counter(
            f"{PREFIX}_truncated_inputs_total",
            "Inputs longer than the model's max length (truncated).",
            registry=r,
        )
        self.predictions = Counter(
            f"{PREFIX}_predictions_total",
            "Predictions by predicted label.",
            ["label"],
            registry=r,
        )
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth_items",
            "Items waiting in the micro-batching queue.",
            registry=r,
        )
        self.rejections = Counter(
            f"{PREFIX}_rejected_items_total",
            "Items refused before inference, by reason (queue_full, not_ready, timeout, disconnected).",
            ["reason"],
            registry=r,
        )
        self.rejected_requests = Counter(
            f"{PREFIX}_rejected_requests_total",
            "Requests refused by admission control before their body was read (overloaded, not_ready).",
            ["reason"],
            registry=r,
        )
        self.prediction_log_dropped = Counter(
            f"{PREFIX}_prediction_log_dropped_total",
            "Prediction-log records dropped (queue full or write error).",
            registry=r,
        )
        self.ready = Gauge(f"{PREFIX}_ready", "1 once the model is loaded and warmed up, else 0.", registry=r)
        self.model_info = Gauge(
            f"{PREFIX}_model_info",
            "The served model (value is always 1).",
            ["model_version"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
