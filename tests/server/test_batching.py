"""The micro-batcher with the real engine: grouping, limits, order, back-pressure, cancellation, shutdown.

A gate in front of ``engine.infer`` holds the (single) worker so a queue builds up deterministically, and
records every batch; the model itself is the real one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from server.batching import (
    BatchConfig,
    BatcherClosedError,
    BatcherDeadError,
    InferenceError,
    MicroBatcher,
    QueueFullError,
)
from server.bundle import load_bundle
from server.engine import Encoded, Engine
from server.metrics import Metrics


class GatedEngine:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.gate = threading.Event()
        self.batches: list[list[int]] = []  # token lengths of each batch, in run order

    def infer(self, batch: Sequence[Encoded]) -> np.ndarray:
        self.gate.wait(timeout=30)
        self.batches.append([e.n_tokens for e in batch])
        return self.engine.infer(batch)


@pytest.fixture(scope="module")
def engine(bundle_dir_fp32: Path) -> Engine:
    return Engine.load(load_bundle(bundle_dir_fp32))


def _items(engine: Engine, lengths: Sequence[int]) -> list[Encoded]:
    """Inputs of exactly these token counts (specials included), all distinct texts."""
    out = []
    for i, n in enumerate(lengths):
        words = ["ticket"] * 200
        words[0] = f"w{i}"
        enc = engine.tokenize([" ".join(words)])[0]
        out.append(
            Encoded(ids=enc.ids[: n - 1] + enc.ids[-1:], type_ids=[0] * n, truncated=False, unk_count=0)
        )
    return out


async def _wait_until(predicate: object, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def test_length_aware_batches_in_input_order(engine: Engine) -> None:
    gated = GatedEngine(engine)
    config = BatchConfig(
        max_batch_size=3, max_batch_tokens=10_000, max_wait_ms=0, max_queue_size=100, workers=1
    )
    metrics = Metrics()

    async def scenario() -> tuple[list[np.ndarray], list[np.ndarray]]:
        batcher = MicroBatcher(gated.infer, config, metrics)
        batcher.start()
        blocker = _items(engine, [5])
        first = batcher.submit(blocker)  # occupies the only worker
        await _wait_until(lambda: batcher.queue_depth == 0)
        items = _items(engine, [20, 6, 21, 7, 22, 8])
        futures = batcher.submit(items)
        assert batcher.queue_depth == 6
        gated.gate.set()
        results = await asyncio.gather(*first, *futures)
        await batcher.close()
        expected = [engine.infer([e])[0] for e in blocker + items]
        return [r.logits for r in results], expected

    got, expected = asyncio.run(scenario())
    # the oldest waiting item (20) leads, joined by the closest lengths; then the short ones together
    assert gated.batches == [[5], [20, 21, 22], [6, 7, 8]]
    for g, e in zip(got, expected, strict=True):  # every answer went back to its own request
        np.testing.assert_allclose(g, e, atol=1e-4)
    assert metrics.queue_depth._value.get() == 0


def test_padded_token_budget_and_batch_size(engine: Engine) -> None:
    gated = GatedEngine(engine)
    config = BatchConfig(max_batch_size=4, max_batch_tokens=40, max_wait_ms=0, max_queue_size=100, workers=1)

    async def scenario() -> None:
        batcher = MicroBatcher(gated.infer, config)
        batcher.start()
        batcher.submit(_items(engine, [3]))
        await _wait_until(lambda: batcher.queue_depth == 0)
        futures = batcher.submit(_items(engine, [30, 9, 10, 10, 8, 9, 10, 9]))
        gated.gate.set()
        await asyncio.gather(*futures)
        await batcher.close()

    asyncio.run(scenario())
    assert sorted(n for batch in gated.batches for n in batch) == sorted([3, 30, 9, 10, 10, 8, 9, 10, 9])
    for batch in gated.batches:
        assert len(batch) <= 4
        assert len(batch) == 1 or len(batch) * max(batch) <= 40, batch
    assert [30] in gated.batches  # too long to share a batch within the budget


def test_full_queue_refuses_all_or_nothing(engine: Engine) -> None:
    gated = GatedEngine(engine)
    config = BatchConfig(max_batch_size=2, max_batch_tokens=1000, max_wait_ms=0, max_queue_size=3, workers=1)

    async def scenario() -> None:
        batcher = MicroBatcher(gated.infer, config)
        batcher.start()
        batcher.submit(_items(engine, [4]))
        await _wait_until(lambda: batcher.queue_depth == 0)
        queued = batcher.submit(_items(engine, [4, 5]))
        with pytest.raises(QueueFullError, match="2 items are waiting \\(limit 3\\)"):
            batcher.submit(_items(engine, [4, 5]))
        assert batcher.queue_depth == 2  # nothing of the refused request was queued
        queued += batcher.submit(_items(engine, [6]))
        gated.gate.set()
        assert len(await asyncio.gather(*queued)) == 3
        await batcher.close()

    asyncio.run(scenario())


def test_cancelled_items_never_run(engine: Engine) -> None:
    gated = GatedEngine(engine)
    config = BatchConfig(max_batch_size=1, max_batch_tokens=1000, max_wait_ms=0, max_queue_size=10, workers=1)

    async def scenario() -> None:
        batcher = MicroBatcher(gated.infer, config)
        batcher.start()
        batcher.submit(_items(engine, [4]))
        await _wait_until(lambda: batcher.queue_depth == 0)
        gone, kept = batcher.submit(_items(engine, [11, 12]))
        gone.cancel()  # the client went away
        gated.gate.set()
        await kept
        await batcher.close()

    asyncio.run(scenario())
    assert gated.batches == [[4], [12]]


def test_max_wait_lets_a_batch_fill(engine: Engine) -> None:
    gated = GatedEngine(engine)
    gated.gate.set()
    config = BatchConfig(
        max_batch_size=4, max_batch_tokens=1000, max_wait_ms=200, max_queue_size=10, workers=1
    )

    async def scenario() -> None:
        batcher = MicroBatcher(gated.infer, config)
        batcher.start()
        first = batcher.submit(_items(engine, [5]))
        await asyncio.sleep(0.02)
        second = batcher.submit(_items(engine, [6]))
        await asyncio.gather(*first, *second)
        await batcher.close()

    asyncio.run(scenario())
    assert gated.batches == [[5, 6]]


def test_close_finishes_queued_work_then_refuses(engine: Engine) -> None:
    gated = GatedEngine(engine)
    config = BatchConfig(max_batch_size=2, max_batch_tokens=1000, max_wait_ms=0, max_queue_size=10, workers=1)

    async def scenario() -> None:
        batcher = MicroBatcher(gated.infer, config)
        batcher.start()
        futures = batcher.submit(_items(engine, [4, 5, 6, 7, 8]))
        threading.Timer(0.1, gated.gate.set).start()
        await batcher.close(timeout_s=10)
        assert all(f.done() and f.exception() is None for f in futures)
        with pytest.raises(BatcherClosedError):
            batcher.submit(_items(engine, [4]))

    asyncio.run(scenario())
    assert sum(len(b) for b in gated.batches) == 5


def test_inference_errors_reach_every_item_of_the_batch(engine: Engine) -> None:
    def broken(batch: Sequence[Encoded]) -> np.ndarray:
        raise RuntimeError("ORT failed")

    async def scenario() -> None:
        batcher = MicroBatcher(broken, BatchConfig(max_batch_size=4, max_wait_ms=50, workers=1))
        batcher.start()
        with pytest.raises(InferenceError, match="inference failed for a batch of 2 items") as caught:
            await batcher.infer(_items(engine, [4, 5]))
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert str(caught.value.__cause__) == "ORT failed"
        await batcher.close()

    asyncio.run(scenario())


def test_a_dead_collector_fails_waiting_items_and_reports(engine: Engine) -> None:
    deaths: list[BaseException] = []
    config = BatchConfig(max_batch_size=1, workers=1, inject_fault="collector")

    async def scenario() -> None:
        batcher = MicroBatcher(engine.infer, config, on_dead=deaths.append)
        batcher.start()
        futures = batcher.submit(_items(engine, [4, 5, 6]))
        results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout=10)
        assert all(isinstance(r, BatcherDeadError) for r in results), results
        with pytest.raises(BatcherDeadError, match="injected collector failure"):
            batcher.submit(_items(engine, [4]))
        await batcher.close()

    asyncio.run(scenario())
    assert len(deaths) == 1 and "injected collector failure" in str(deaths[0])


def test_drain_rate_gives_retry_after_and_padding_is_counted(engine: Engine) -> None:
    metrics = Metrics()
    config = BatchConfig(max_batch_size=2, max_batch_tokens=100, workers=1, retry_after_min_s=1)

    async def scenario() -> MicroBatcher:
        batcher = MicroBatcher(engine.infer, config, metrics)
        batcher.start()
        assert batcher.retry_after_s() == 1  # nothing measured yet: the minimum
        for _ in range(5):
            await asyncio.gather(*batcher.submit(_items(engine, [4, 8])))
        await batcher.close()
        return batcher

    batcher = asyncio.run(scenario())
    assert batcher.drain_rate > 0
    text = metrics.render().decode()
    assert "ticket_triage_batch_padded_tokens_sum 80.0" in text  # 5 batches x 2 items x 8 tokens
    assert "ticket_triage_padding_tokens_total 20.0" in text  # 5 x (16 - 12)


def test_no_waiting_once_the_token_budget_is_used(engine: Engine) -> None:
    gated = GatedEngine(engine)
    gated.gate.set()
    config = BatchConfig(
        max_batch_size=8, max_batch_tokens=10, max_wait_ms=5000, max_queue_size=10, workers=1
    )

    async def scenario() -> tuple[float, float]:
        batcher = MicroBatcher(gated.infer, config)
        batcher.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = batcher.submit(_items(engine, [6]))
        await asyncio.sleep(0.05)
        second = batcher.submit(_items(engine, [6]))  # 2 x 6 padded tokens > 10: the first cannot grow
        await asyncio.gather(*first)
        first_done = loop.time() - started
        await batcher.close()  # the second, alone and waiting for company, runs at once on shutdown
        assert second[0].done() and second[0].exception() is None
        return first_done, loop.time() - started

    first_done, closed = asyncio.run(scenario())
    assert first_done < 2.5 and closed < 2.5  # far below the 5 s max wait
    assert gated.batches == [[6], [6]]


def test_a_batch_that_runs_alone_uses_the_alone_runner(engine: Engine) -> None:
    calls: list[str] = []

    def shared(batch: Sequence[Encoded]) -> np.ndarray:
        calls.append("shared")
        return engine.infer(batch)

    def alone(batch: Sequence[Encoded]) -> np.ndarray:
        calls.append("alone")
        return engine.infer(batch)

    async def scenario() -> None:
        batcher = MicroBatcher(shared, BatchConfig(max_batch_size=1, workers=1), run_alone=alone)
        batcher.start()
        await asyncio.gather(
            *batcher.submit(_items(engine, [4, 5, 6]))
        )  # a queue: the first two have company
        await asyncio.gather(*batcher.submit(_items(engine, [4])))  # one client: alone
        await batcher.close()

    asyncio.run(scenario())
    assert calls == ["shared", "shared", "alone", "alone"]


def test_engine_idle_session_gives_the_same_logits(bundle_dir_fp32: Path) -> None:
    wide = Engine.load(load_bundle(bundle_dir_fp32), 1, idle_threads=2)
    assert wide.has_idle_session and wide.idle_threads == 2
    items = wide.tokenize(["printer jam on floor two", "Der Server ist ausgefallen!"])
    np.testing.assert_allclose(wide.infer_idle(items), wide.infer(items), atol=1e-5)
    assert not Engine.load(load_bundle(bundle_dir_fp32), 1).has_idle_session
