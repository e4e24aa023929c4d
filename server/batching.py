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
differ in the last digits depending on its batch mates; ``MAX_BATCH_SIZE=1`` (the CPU default) makes answers
independent of other traffic.

If the collector task dies (a bug), every waiting item fails with :class:`BatcherDeadError` and ``on_dead`` is
called, so the runtime can report not-ready and stop the process instead of letting requests wait forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from server.engine import Encoded
from server.metrics import Metrics

__all__ = [
    "BatchConfig",
    "BatchResult",
    "BatcherClosedError",
    "BatcherDeadError",
    "InferenceError",
    "MicroBatcher",
    "QueueFullError",
]

logger = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The queue holds ``max_queue_size`` items already; the client should retry in ``retry_after_s``."""

    def __init__(self, message: str, n_items: int, retry_after_s: int) -> None:
        super().__init__(message)
        self.n_items = n_items
        self.retry_after_s = retry_after_s


class InferenceError(RuntimeError):
    """ONNX Runtime failed on the batch this item was in (the cause is chained)."""


class BatcherClosedError(RuntimeError):
    """The server is shutting down and accepts no new work."""


class BatcherDeadError(RuntimeError):
    """The collector task died: nothing queued will ever run (the process is stopping)."""


@dataclass(frozen=True, slots=True)
class BatchConfig:
    max_batch_size: int = 8
    max_batch_tokens: int = 256
    max_wait_ms: float = 0.0
    max_queue_size: int = 128
    workers: int = 2
    retry_after_min_s: int = 1
    inject_fault: str = ""  # "collector": the collector raises on its first batch (fault tests only)


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
        on_dead: Callable[[BaseException], None] | None = None,
        run_alone: Callable[[Sequence[Encoded]], np.ndarray] | None = None,
    ) -> None:
        self._run_batch = run_batch
        # for a batch that runs with nothing else in flight or queued (e.g. the engine's all-cores session)
        self._run_alone = run_alone
        self.config = config
        self._metrics = metrics
        self._on_dead = on_dead
        self._dead: BaseException | None = None
        # drain rate (items/s): exponentially weighted over finished batches, for Retry-After
        self._rate = 0.0
        self._last_finish: float | None = None
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

    @property
    def drain_rate(self) -> float:
        """Items finished per second (smoothed; 0 before the first batch)."""
        return self._rate

    def retry_after_s(self, maximum: int = 60) -> int:
        """Seconds until the queue as it is now has drained at the measured rate (at least RETRY_AFTER_S)."""
        minimum = self.config.retry_after_min_s
        if self._rate <= 0:
            return minimum
        return max(minimum, min(maximum, math.ceil(len(self._pending) / self._rate)))

    def start(self) -> None:
        """Start the collector task (call from the running event loop)."""
        if self._collector is None:
            self._collector = asyncio.get_running_loop().create_task(self._collect(), name="micro-batcher")
            self._collector.add_done_callback(self._collector_done)

    def _collector_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._closed:
            return
        error = task.exception() or RuntimeError("the micro-batcher stopped unexpectedly")
        self._dead = error
        logger.error("the micro-batcher died: %r; failing %d queued items", error, len(self._pending))
        for entry in self._pending:
            if not entry.future.done():
                entry.future.set_exception(BatcherDeadError(f"the micro-batcher died ({error!r})"))
        self._pending.clear()
        self._set_depth()
        if self._on_dead is not None:
            self._on_dead(error)

    def submit(self, items: Sequence[Encoded]) -> list[asyncio.Future[BatchResult]]:
        """Queue ``items`` (all or none); their futures resolve to a :class:`BatchResult` each."""
        if self._dead is not None:
            raise BatcherDeadError(f"the micro-batcher died ({self._dead!r})")
        if self._closed:
            raise BatcherClosedError("the server is shutting down")
        if len(self._pending) + len(items) > self.config.max_queue_size:
            raise QueueFullError(
                f"{len(self._pending)} items are waiting (limit {self.config.max_queue_size}); retry shortly",
                n_items=len(items),
                retry_after_s=self.retry_after_s(),
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

    def expire_pending(self) -> int:
        """Fail every queued item with BatcherClosedError (503) now (running batches finish); the count."""
        n = 0
        for entry in self._pending:
            if not entry.future.done():
                entry.future.set_exception(BatcherClosedError("the server shut down before this item ran"))
                n += 1
        self._pending.clear()
        self._set_depth()
        return n

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop accepting work, let queued and running batches finish (up to ``timeout_s``), stop workers."""
        self._closed = True
        self._arrived.set()  # wake a collector that waits for a batch to fill: nothing more will come
        deadline = time.monotonic() + timeout_s
        while (self._pending or self._inflight) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a death was reported already
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
            try:
                if self.config.inject_fault == "collector":
                    raise RuntimeError("injected collector failure (SERVER_INJECT_FAULT=collector)")
                started = time.perf_counter()
                alone = self._run_alone is not None and not self._inflight and not self._pending
                run = self._run_alone if alone and self._run_alone is not None else self._run_batch
                job = loop.run_in_executor(self._executor, run, [p.item for p in batch])
            except BaseException as exc:  # the taken items are no longer queued: fail them here
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(BatcherDeadError(f"the micro-batcher died ({exc!r})"))
                raise
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
        now = time.perf_counter()
        elapsed = now - started
        self._observe_rate(len(batch), now)
        if self._metrics is not None:
            self._metrics.inference_latency.observe(elapsed)
            self._metrics.batch_size.observe(len(batch))
            padded = len(batch) * max(p.item.n_tokens for p in batch)
            self._metrics.padded_tokens.observe(padded)
            self._metrics.padding_tokens.inc(padded - sum(p.item.n_tokens for p in batch))
        if job.cancelled():
            error: BaseException | None = BatcherClosedError("the server shut down before this item ran")
        else:
            error = job.exception()
        if error is not None:
            logger.error("inference failed for a batch of %d items: %r", len(batch), error)
            if not isinstance(error, BatcherClosedError):
                wrapped = InferenceError(f"inference failed for a batch of {len(batch)} items")
                wrapped.__cause__ = error
                error = wrapped
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

    def _observe_rate(self, n: int, now: float) -> None:
        last, self._last_finish = self._last_finish, now
        if last is None:
            return
        # items over the gap since the previous batch finished (any worker), smoothed over ~20 batches; idle
        # gaps make it low, but then the queue is empty and Retry-After is the minimum anyway
        gap = max(now - last, 1e-4)
        instant = n / gap
        self._rate = instant if self._rate == 0 else 0.95 * self._rate + 0.05 * instant

    def _drop_cancelled(self) -> None:
        if any(p.future.done() for p in self._pending):
            self._pending = deque(p for p in self._pending if not p.future.done())
            self._set_depth()

    def _set_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(len(self._pending))
