"""TEI-style API additions and the bundle's calibration/review, in process (Litestar TestClient, real bundle):
GET /info, ``truncate``, ``raw_scores``, ``needs_review``, admission before parsing, the request deadline and
dropping the items of clients that went away."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from server.batching import BatchConfig, MicroBatcher
from server.bundle import load_bundle
from server.engine import Encoded, Engine, softmax
from server.metrics import Metrics
from server.schemas import PredictRequest
from server.service import ClientDisconnectedError, PredictionService, RequestTimeoutError
from tests.server.conftest import make_settings, ready_client
from tests.server.test_api import TICKET, _gated_factory, _metric
from tests.server.test_engine import _raw_logits

CALIBRATION = {"temperature": 1.7, "bias": [0.3, -0.2, 0.05], "fitted_on": "val", "n": 30}


@pytest.fixture(scope="module")
def calibrated_bundle(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The int8 tiny bundle with calibration and a review band that flags about half of the tickets."""
    import shutil

    copy = Path(shutil.copytree(bundle_dir, tmp_path_factory.mktemp("calibrated") / "bundle"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["calibration"] = CALIBRATION
    manifest["review"] = {"threshold": 0.5, "target_accuracy": 0.7}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.fixture(scope="module")
def calibrated(calibrated_bundle: Path) -> Iterator[TestClient[Litestar]]:
    with ready_client(make_settings(calibrated_bundle)) as c:
        yield c


TEXTS = [
    "Since this morning every card payment fails. Customers cannot pay.",
    "Could you send me last month's invoice again?",
    "Der Server ist ausgefallen, niemand kann arbeiten!",
    "¿Cómo cambio mi contraseña?",
    "printer jam on floor two",
    "We would like to know more about your enterprise plan.",
]


def test_calibration_and_review_follow_the_contract(
    calibrated: TestClient[Litestar], bundle_dir: Path
) -> None:
    flags = []
    for text in TEXTS:
        body = calibrated.post("/predict", json={"text": text, "raw_scores": True}).json()
        z = _raw_logits(bundle_dir, "", text)
        c = (z.astype(np.float64) + np.array(CALIBRATION["bias"])) / CALIBRATION["temperature"]
        expected = softmax(c[None, :])[0]
        np.testing.assert_allclose(list(body["scores"].values()), expected, atol=1e-6)
        np.testing.assert_allclose(list(body["raw_scores"].values()), z, atol=1e-5)
        assert body["label_id"] == int(np.argmax(c))
        assert body["confidence"] == pytest.approx(float(expected.max()))
        assert body["needs_review"] is (float(expected.max()) < 0.5)
        flags.append(body["needs_review"])
    batch = calibrated.post("/predict/batch", json={"items": [{"text": t} for t in TEXTS]}).json()
    assert [p["needs_review"] for p in batch["predictions"]] == flags
    assert all("raw_scores" not in p for p in batch["predictions"])


@pytest.fixture(scope="module")
def plain(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Litestar]]:
    """The bundle without `calibration` and `review` blocks (as bundles exported before issue 11)."""
    import shutil

    copy = Path(shutil.copytree(bundle_dir, tmp_path_factory.mktemp("plain") / "bundle"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.pop("calibration", None)
    manifest.pop("review", None)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with ready_client(make_settings(copy)) as c:
        yield c


def test_without_review_block_nothing_needs_review(plain: TestClient[Litestar], bundle_dir: Path) -> None:
    client = plain
    assert client.get("/info").json()["calibration"] is None
    for text in TEXTS:
        body = client.post("/predict", json={"text": text}).json()
        assert body["needs_review"] is False
        assert "raw_scores" not in body
        expected = softmax(_raw_logits(bundle_dir, "", text)[None, :])[0]  # temperature 1, bias 0
        np.testing.assert_allclose(list(body["scores"].values()), expected, atol=1e-6)


def test_info_describes_the_bundle_and_limits(
    calibrated: TestClient[Litestar], calibrated_bundle: Path
) -> None:
    manifest = json.loads((calibrated_bundle / "manifest.json").read_text())
    response = calibrated.get("/info")
    assert response.status_code == 200
    info = response.json()
    assert info["model_version"] == manifest["model_version"]
    assert info["labels"] == manifest["labels"]
    assert info["max_length"] == manifest["max_length"]
    assert info["quantization"] == manifest["quantization"]
    assert info["dtype"] == "int8" and info["device"] == "cpu"
    assert info["providers"] == ["CPUExecutionProvider"]
    assert info["metrics"] == manifest["metrics"]
    assert info["calibration"] == CALIBRATION
    assert info["review"] == {"threshold": 0.5, "target_accuracy": 0.7}
    assert info["limits"]["max_batch_items"] == 64 and info["limits"]["max_text_chars"] == 20_000
    assert info["limits"]["max_batch_size"] == 1  # CPU default: answers independent of other traffic


def test_truncate_false_is_413_with_the_token_count(client: TestClient[Litestar]) -> None:
    long_text = "printer jam " * 400
    ok = client.post("/predict", json={"text": long_text})
    assert ok.status_code == 200 and ok.json()["truncated"] is True
    refused = client.post("/predict", json={"text": long_text, "truncate": False})
    assert refused.status_code == 413
    error = refused.json()
    assert error["error_type"] == "too_large"
    (extra,) = error["extra"]
    max_length = client.get("/info").json()["max_length"]
    assert extra["max_length"] == max_length and extra["n_tokens"] > max_length
    assert f"has {extra['n_tokens']} tokens, the model's max_length is {max_length}" in error["detail"]
    short = client.post("/predict", json={"text": "printer jam", "truncate": False})
    assert short.status_code == 200
    batch = client.post(
        "/predict/batch", json={"items": [{"text": "ok"}, {"text": long_text}], "truncate": False}
    )
    assert batch.status_code == 413 and batch.json()["detail"].startswith("items[1].text has")


def test_admission_refuses_before_reading_the_body(bundle_dir: Path) -> None:
    warm, hold = threading.Event(), threading.Event()
    warm.set()
    settings = make_settings(
        bundle_dir, inference_workers=1, max_queue_size=1, max_batch_items=1, max_inflight_requests=1
    )
    with ready_client(settings, engine_factory=_gated_factory(warm, hold)) as client:
        engine: Any = client.app.state.runtime.service.engine
        results: list[int] = []
        running = threading.Thread(
            target=lambda: results.append(client.post("/predict", json=TICKET).status_code)
        )
        running.start()
        assert engine.entered.acquire(timeout=10)
        # not JSON at all: a parsed body would be a 400, an unparsed refusal is a 429
        refused = client.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})
        hold.set()
        running.join(10)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error_type"] == "overloaded"
        assert int(refused.headers["retry-after"]) >= 1
        assert results == [200]
        assert _metric(client, "ticket_triage_rejected_requests_total", reason="overloaded") == 1
        assert client.post("/predict", json=TICKET).status_code == 200  # capacity is back


def test_request_deadline_is_503_and_the_item_never_runs(bundle_dir: Path) -> None:
    warm, hold = threading.Event(), threading.Event()
    warm.set()
    settings = make_settings(bundle_dir, inference_workers=1, request_timeout_s=0.5)
    with ready_client(settings, engine_factory=_gated_factory(warm, hold)) as client:
        engine: Any = client.app.state.runtime.service.engine
        first: list[Any] = []
        running = threading.Thread(target=lambda: first.append(client.post("/predict", json=TICKET)))
        running.start()
        assert engine.entered.acquire(timeout=10)  # the first request holds the only worker
        late = client.post("/predict", json={"text": "queued behind the first one"})
        assert late.status_code == 503
        assert late.json()["error_type"] == "timeout"
        assert "not answered within REQUEST_TIMEOUT_S=0.5 s" in late.json()["detail"]
        hold.set()
        running.join(10)
        assert first[0].status_code == 503  # it waited past the deadline too, while it ran
        assert _metric(client, "ticket_triage_rejected_items_total", reason="timeout") == 2
        name = "ticket_triage_inference_duration_seconds_count"
        for _ in range(500):
            if _metric(client, name) >= 1:
                break
            threading.Event().wait(0.01)
        threading.Event().wait(0.3)
        assert _metric(client, name) == 1  # only the first item ran; the queued one was dropped


class _Recording:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.gate = threading.Event()
        self.ran: list[int] = []

    def infer(self, batch: Sequence[Encoded]) -> np.ndarray:
        self.gate.wait(timeout=30)
        self.ran.append(len(batch))
        return self.engine.infer(batch)


def test_items_of_disconnected_clients_are_dropped_before_inference(bundle_dir: Path) -> None:
    engine = Engine.load(load_bundle(bundle_dir))
    recording = _Recording(engine)
    metrics = Metrics()

    async def scenario() -> None:
        batcher = MicroBatcher(recording.infer, BatchConfig(max_batch_size=1, workers=1), metrics)
        batcher.start()
        service = PredictionService(engine, batcher, metrics, max_text_chars=20_000)
        running = asyncio.ensure_future(service.predict([PredictRequest(text="first")], request_id="a"))
        await asyncio.sleep(0.2)  # the first item holds the only worker
        gone = asyncio.get_running_loop().create_future()
        waiting = asyncio.ensure_future(
            service.predict(
                [PredictRequest(text="second"), PredictRequest(text="third")], "b", disconnected=lambda: gone
            )
        )
        await asyncio.sleep(0.1)
        assert batcher.queue_depth == 2
        gone.set_result(None)  # the client of the second request disconnects
        with pytest.raises(ClientDisconnectedError):
            await waiting
        recording.gate.set()
        await running
        await batcher.close()

    asyncio.run(scenario())
    assert recording.ran == [1]  # only the first request's item reached the model
    assert 'ticket_triage_rejected_items_total{reason="disconnected"} 2.0' in metrics.render().decode()


def test_service_deadline_counts_from_the_request_start(bundle_dir: Path) -> None:
    engine = Engine.load(load_bundle(bundle_dir))
    recording = _Recording(engine)

    async def scenario() -> None:
        batcher = MicroBatcher(recording.infer, BatchConfig(max_batch_size=1, workers=1))
        batcher.start()
        service = PredictionService(engine, batcher, Metrics(), 20_000, request_timeout_s=0.2)
        with pytest.raises(RequestTimeoutError):
            await service.predict([PredictRequest(text="held")], request_id="a")
        recording.gate.set()
        await batcher.close()

    asyncio.run(scenario())
