"""The prediction use case, free of HTTP: validate tickets, tokenize, batch, infer, score, count, log.

Routes translate HTTP into calls of :meth:`PredictionService.predict` and its errors into status codes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from server.batching import MicroBatcher
from server.engine import Encoded, Engine
from server.metrics import Metrics
from server.predlog import PredictionLog, utc_timestamp
from server.schemas import PredictRequest, PredictResponse

__all__ = ["EmptyTextError", "PredictionService", "TextTooLongError", "TicketError", "Timings"]

# texts up to this many characters are tokenized on the event loop (~0.1 ms); longer ones in a thread
_INLINE_TOKENIZE_CHARS = 2_000


class TicketError(ValueError):
    """A ticket the server will not score; ``field`` locates it (``text`` or ``items[3].text``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class EmptyTextError(TicketError):
    """``text`` is empty or whitespace only."""


class TextTooLongError(TicketError):
    """``text`` + ``subject`` exceed MAX_TEXT_CHARS."""


@dataclass(frozen=True, slots=True)
class Timings:
    """Where one request's time went (for the timing headers); queue and inference are the slowest item's."""

    tokenization_s: float
    queue_s: float
    inference_s: float


class PredictionService:
    def __init__(
        self,
        engine: Engine,
        batcher: MicroBatcher,
        metrics: Metrics,
        max_text_chars: int,
        prediction_log: PredictionLog | None = None,
    ) -> None:
        self.engine = engine
        self.batcher = batcher
        self.metrics = metrics
        self.max_text_chars = max_text_chars
        self.prediction_log = prediction_log

    def check(self, tickets: Sequence[PredictRequest], batch: bool) -> None:
        """Raise a :class:`TicketError` for the first ticket that cannot be scored."""
        for i, ticket in enumerate(tickets):
            where = f"items[{i}]." if batch else ""
            if not ticket.text.strip():
                raise EmptyTextError(
                    f"{where}text", "is empty or whitespace only; send the ticket body in `text`"
                )
            n_chars = len(ticket.text) + len(ticket.subject or "")
            if n_chars > self.max_text_chars:
                raise TextTooLongError(
                    f"{where}text",
                    f"text and subject have {n_chars} characters, the limit is {self.max_text_chars} "
                    "(MAX_TEXT_CHARS); shorten the ticket",
                )

    async def predict(
        self, tickets: Sequence[PredictRequest], request_id: str, batch: bool = False
    ) -> tuple[list[PredictResponse], Timings]:
        """Score ``tickets`` in order; may raise TicketError, QueueFullError or BatcherClosedError."""
        self.check(tickets, batch)
        texts = [self.engine.build_text(t.subject, t.text) for t in tickets]
        started = time.perf_counter()
        if sum(len(t) for t in texts) <= _INLINE_TOKENIZE_CHARS:
            encoded = self.engine.tokenize(texts)
        else:
            encoded = await asyncio.to_thread(self.engine.tokenize, texts)
        tokenization_s = time.perf_counter() - started
        self.metrics.tokenization_latency.observe(tokenization_s)

        results = await self.batcher.infer(encoded)
        predictions = self.engine.predictions(np.stack([r.logits for r in results]))

        responses = []
        for text, enc, pred in zip(texts, encoded, predictions, strict=True):
            responses.append(
                PredictResponse(
                    label=pred.label,
                    label_id=pred.label_id,
                    confidence=pred.confidence,
                    scores=pred.scores,
                    truncated=enc.truncated,
                    model_version=self.engine.model_version,
                )
            )
            self._observe(enc, pred.label)
            if self.prediction_log is not None:
                self._log(text, enc, responses[-1], request_id)
        timings = Timings(
            tokenization_s=tokenization_s,
            queue_s=max(r.queue_s for r in results),
            inference_s=max(r.inference_s for r in results),
        )
        return responses, timings

    def _observe(self, enc: Encoded, label: str) -> None:
        self.metrics.input_tokens.observe(enc.n_tokens)
        self.metrics.predictions.labels(label=label).inc()
        if enc.truncated:
            self.metrics.truncations.inc()

    def _log(self, text: str, enc: Encoded, response: PredictResponse, request_id: str) -> None:
        assert self.prediction_log is not None
        record: dict[str, object] = {
            "ts": utc_timestamp(),
            "model_version": response.model_version,
            "label": response.label,
            "confidence": response.confidence,
            "scores": response.scores,
            "n_chars": len(text),
            "n_tokens": enc.n_tokens,
            "truncated": enc.truncated,
            "unk_ratio": enc.unk_count / enc.n_tokens if enc.n_tokens else 0.0,
            "request_id": request_id,
        }
        self.prediction_log.log(record, text)  # the writer thread adds `language` (and `text` if enabled)
