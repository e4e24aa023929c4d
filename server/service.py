"""The prediction use case, free of HTTP: validate tickets, tokenize, batch, infer, score, count, log.

Routes translate HTTP into calls of :meth:`PredictionService.predict` and its errors into status codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from server.batching import BatchResult, MicroBatcher, QueueFullError
from server.engine import Encoded, Engine
from server.language import guess_language
from server.metrics import Metrics
from server.predlog import PredictionLog, utc_timestamp
from server.schemas import PredictResponse

__all__ = [
    "ClientDisconnectedError",
    "EmptyTextError",
    "PredictionService",
    "RequestTimeoutError",
    "TextTooLongError",
    "TicketError",
    "Timings",
    "TokensOverLimitError",
]


class Ticket(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def subject(self) -> str | None: ...


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


class TokensOverLimitError(TicketError):
    """``truncate: false`` and the ticket has more tokens than the model's max length (413)."""

    def __init__(self, field: str, n_tokens: int, max_length: int) -> None:
        super().__init__(
            field,
            f"has {n_tokens} tokens, the model's max_length is {max_length}; shorten it or send "
            "truncate: true",
        )
        self.n_tokens = n_tokens
        self.max_length = max_length


class RequestTimeoutError(RuntimeError):
    """The request was not answered within REQUEST_TIMEOUT_S (503)."""


class ClientDisconnectedError(RuntimeError):
    """The client went away while its items waited; they were dropped before inference."""


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
        request_timeout_s: float = 0.0,
    ) -> None:
        self.engine = engine
        self.batcher = batcher
        self.metrics = metrics
        self.max_text_chars = max_text_chars
        self.prediction_log = prediction_log
        self.request_timeout_s = request_timeout_s

    def check(self, tickets: Sequence[Ticket], batch: bool) -> None:
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
        self,
        tickets: Sequence[Ticket],
        request_id: str,
        batch: bool = False,
        truncate: bool = True,
        raw_scores: bool = False,
        disconnected: Callable[[], Awaitable[object]] | None = None,
    ) -> tuple[list[PredictResponse], Timings]:
        """Score ``tickets`` in order.

        May raise TicketError (422/413), QueueFullError (429), BatcherClosedError / BatcherDeadError /
        RequestTimeoutError (503), InferenceError (424) or ClientDisconnectedError (when the awaitable that
        ``disconnected()`` returns completes first: the client went away, its queued items are dropped before
        inference).
        """
        started_request = time.perf_counter()
        self.check(tickets, batch)
        texts = [self.engine.build_text(t.subject, t.text) for t in tickets]
        started = time.perf_counter()
        if sum(len(t) for t in texts) <= _INLINE_TOKENIZE_CHARS:
            encoded = self.engine.tokenize(texts)
        else:
            encoded = await asyncio.to_thread(self.engine.tokenize, texts)
        tokenization_s = time.perf_counter() - started
        self.metrics.tokenization_latency.observe(tokenization_s)
        if not truncate:
            for i, enc in enumerate(encoded):
                if enc.truncated:
                    where = f"items[{i}].text" if batch else "text"
                    n_tokens = self.engine.count_tokens(texts[i])
                    raise TokensOverLimitError(where, n_tokens, self.engine.max_length)

        results = await self._infer(encoded, started_request, disconnected)
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
                    needs_review=pred.needs_review,
                    model_version=self.engine.model_version,
                    raw_scores=pred.raw_scores if raw_scores else None,
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

    async def _infer(
        self, encoded: list[Encoded], started: float, disconnected: Callable[[], Awaitable[object]] | None
    ) -> list[BatchResult]:
        """Queue ``encoded`` and wait for the results, bounded by the request deadline and the client's
        presence; on either, the items are cancelled (the batcher drops cancelled items before inference)."""
        try:
            futures = self.batcher.submit(encoded)
        except QueueFullError as exc:
            self.metrics.rejections.labels(reason="queue_full").inc(exc.n_items)
            raise
        gathered = asyncio.gather(*futures)
        watcher = asyncio.ensure_future(disconnected()) if disconnected is not None else None
        timeout = None
        if self.request_timeout_s > 0:
            timeout = max(0.0, started + self.request_timeout_s - time.perf_counter())
        try:
            waiting: set[asyncio.Future[Any]] = {gathered} if watcher is None else {gathered, watcher}
            done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if gathered in done:
                return list(gathered.result())
        finally:  # also when this request is cancelled: no live futures stay in the queue
            for fut in futures:
                fut.cancel()
            if watcher is not None:
                watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gathered
        if watcher is not None and watcher in done:
            self.metrics.rejections.labels(reason="disconnected").inc(len(encoded))
            raise ClientDisconnectedError("the client disconnected before its answer was ready")
        self.metrics.rejections.labels(reason="timeout").inc(len(encoded))
        raise RequestTimeoutError(
            f"the request was not answered within REQUEST_TIMEOUT_S={self.request_timeout_s:g} s (the server "
            "is overloaded); retry later or on another instance"
        )

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
            "needs_review": response.needs_review,
            "request_id": request_id,
            # guessed now, so the queue holds no ticket text unless text logging is on
            "language": guess_language(text),
        }
        self.prediction_log.log(record, text if self.prediction_log.include_text else None)
