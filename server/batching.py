"""Cross-request micro-batching with a bounded queue.

Requests put tokenized items into one queue; a collector task forms batches whenever an inference worker is
free and runs them in a thread pool (ONNX Runtime releases the GIL, so the event loop keeps serving).

Batching rules:
- a batch holds at most ``max_batch_size`` items and at most ``max_batch_tokens`` *padded* tokens
  (items x longest item), so one long ticket is not padded together with many short ones;
- the oldest waiting item always goes into the next batch (no starvation); the rest of the batch is filled
  with the waiting items closest to it in length (length-aware grouping keeps padding small);
- when a worker is free but the batch is not full, the collector waits until the oldest item has waited
  ``max_wait_ms`` at most; under load items queue up while workers are busy, so batches fill by themselves;
- more than ``max_queue_size`` waiting items: :class:`QueueFullError` (the route answers 429 + Retry-After).

Note for int8 bundles: dynamic quantization computes activation ranges per batch, so an item's logits can
differ in the last digits depending on its batch mates; ``MAX_BATCH_SIZE=1`` makes answers independent
of other traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from server.engine import Encoded
from server.metrics import Metrics

__all__ = ["BatchConfig", "BatchResult", "BatcherClosedError", "MicroBatcher", "QueueFullError"]

logger = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The queue holds ``max_queue_size`` items already; the client should retry later."""


class BatcherClosedError(RuntimeError):
    """The server is shutting down and accepts no new work."""


@dataclass(frozen=True, slots=True)
class BatchConfig:
    max_batch_size: int = 8
    max_batch_tokens: int = 256
    max_wait_ms: float = 0.0
    max_queue_size: int = 128
    workers: int = 2


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One item's answer: its logits row and where its time went."""

    logits: np.ndarray
    queue_s: float
    inference_s: float
    batch_size: int


@dataclass(slots=True)
class _Pending:
    item: Encoded
    future: asyncio.Future[BatchResult]
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Collects items from concurrent requests into batches for ``run_batch`` (called in worker threads)."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[Encoded]], np.ndarray],
        config: BatchConfig,
        metrics: Metrics | None = None,
    ) -> None:
        self._run_batch = run_batch
        self.config = config
        self._metrics = metrics
        self._pending: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(config.workers)
        self._executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="inference")
        self._inflight: set[asyncio.Future[np.ndarray]] = set()
        self._collector: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        """Start the collector task (call from the running event loop)."""
        if self._collector is None:
            self._collector = asyncio.get_running_loop().create_task(self._collect(), name="micro-batcher")

    def submit(self, items: Sequence[Encoded]) -> list[asyncio.Future[BatchResult]]:
        """Queue ``items`` (all or none); their futures resolve to a :class:`BatchResult` each."""
        if self._closed:
            raise BatcherClosedError("the server is shutting down")
        if len(self._pending) + len(items) > self.config.max_queue_size:
            raise QueueFullError(
                f"{len(self._pending)} items are waiting (limit {self.config.max_queue_size}); retry shortly"
            )
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[BatchResult]] = []
        for item in items:
            fut: asyncio.Future[BatchResult] = loop.create_future()
            self._pending.append(_Pending(item, fut))
            futures.append(fut)
        self._set_depth()
        self._arrived.set()
        return futures

    async def infer(self, items: Sequence[Encoded]) -> list[BatchResult]:
        """Submit ``items`` and wait for all of them (in input order)."""
        futures = self.submit(items)
        try:
            return list(await asyncio.gather(*futures))
        finally:  # a cancelled request (client went away) leaves no live futures behind
            for fut in futures:
                fut.cancel()

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop accepting work, let queued and running batches finish (up to ``timeout_s``), stop workers."""
        self._closed = True
        self._arrived.set()  # wake a collector that waits for a batch to fill: nothing more will come
        deadline = time.monotonic() + timeout_s
        while (self._pending or self._inflight) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        for entry in self._pending:
            if not entry.future.done():
                entry.future.set_exception(BatcherClosedError("the server shut down before this item ran"))
        self._pending.clear()
        self._set_depth()
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            self._drop_cancelled()
            if not self._pending:
                self._arrived.clear()
                continue
            await self._slots.acquire()
            await self._wait_to_fill()
            batch = self._take_batch()
            if not batch:
                self._slots.release()
                continue
            started = time.perf_counter()
            job = loop.run_in_executor(self._executor, self._run_batch, [p.item for p in batch])
            self._inflight.add(job)
            job.add_done_callback(functools.partial(self._finish, batch=batch, started=started))

    async def _wait_to_fill(self) -> None:
        """Give a non-full batch until the oldest item has waited ``max_wait_ms`` to fill up."""
        wait_s = self.config.max_wait_ms / 1000.0
        if wait_s <= 0:
            return
        while self._pending and len(self._pending) < self.config.max_batch_size and not self._closed:
            padded = len(self._pending) * max(p.item.n_tokens for p in self._pending)
            if padded >= self.config.max_batch_tokens:
                return  # the token budget is already used up: waiting cannot grow the batch
            remaining = self._pending[0].enqueued + wait_s - time.perf_counter()
            if remaining <= 0:
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=remaining)
            self._drop_cancelled()

    def _take_batch(self) -> list[_Pending]:
        self._drop_cancelled()
        if not self._pending:
            self._arrived.clear()
            return []
        first = self._pending.popleft()
        batch = [first]
        longest = first.item.n_tokens
        if self.config.max_batch_size > 1 and self._pending:
            target = first.item.n_tokens
            # closest in length to the oldest item first; ties keep arrival order
            order = sorted(
                range(len(self._pending)), key=lambda i: abs(self._pending[i].item.n_tokens - target)
            )
            chosen: list[int] = []
            for i in order:
                if len(batch) >= self.config.max_batch_size:
                    break
                candidate = self._pending[i]
                width = max(longest, candidate.item.n_tokens)
                if width * (len(batch) + 1) > self.config.max_batch_tokens:
                    continue
                batch.append(candidate)
                chosen.append(i)
                longest = width
            if chosen:
                keep = set(chosen)
                self._pending = deque(p for i, p in enumerate(self._pending) if i not in keep)
        # invariant for the collector: the event is set exactly while items are waiting
        if self._pending:
            self._arrived.set()
        else:
            self._arrived.clear()
        self._set_depth()
        return batch

    def _finish(self, job: asyncio.Future[np.ndarray], batch: list[_Pending], started: float) -> None:
        self._inflight.discard(job)
        self._slots.release()
        elapsed = time.perf_counter() - started
        if self._metrics is not None:
            self._metrics.inference_latency.observe(elapsed)
            self._metrics.batch_size.observe(len(batch))
        if job.cancelled():
            error: BaseException | None = BatcherClosedError("the server shut down before this item ran")
        else:
            error = job.exception()
        if error is not None:
            logger.error("inference failed for a batch of %d items: %r", len(batch), error)
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(error)
            return
        logits = job.result()
        for row, entry in enumerate(batch):
            queue_s = started - entry.enqueued
            if self._metrics is not None:
                self._metrics.queue_wait.observe(queue_s)
            if not entry.future.done():
                entry.future.set_result(BatchResult(logits[row], queue_s, elapsed, len(batch)))

    def _drop_cancelled(self) -> None:
        if any(p.future.done() for p in self._pending):
            self._pending = deque(p for p in self._pending if not p.future.done())
            self._set_depth()

    def _set_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(len(self._pending))
