"""Every endpoint and every bad-input case, in process through Litestar's TestClient (lifespan included)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from server.bundle import Bundle, load_bundle
from server.engine import Encoded, Engine
from server.errors import ERROR_TYPES
from tests.server.conftest import REPO_ROOT, make_settings, ready_client
from tests.server.test_engine import _raw_logits, expected_scores

TICKET = {
    "subject": "Checkout down",
    "text": "Since this morning every card payment fails. Customers cannot pay.",
}
JSON = {"Content-Type": "application/json"}


def _metric(client: TestClient[Litestar], name: str, **labels: str) -> float:
    """Value of one sample in the Prometheus text of GET /metrics (0 when absent)."""
    text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        metric, _, label_text = sample.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if metric == name and all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


# --- happy paths -----------------------------------------------------------------------------------


def test_health(client: TestClient[Litestar]) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_names_the_model(client: TestClient[Litestar], bundle_dir: Path) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert response.json() == {"status": "ready", "model_version": manifest["model_version"], "detail": None}


def test_predict_matches_onnx_runtime_directly(client: TestClient[Litestar], bundle_dir: Path) -> None:
    response = client.post("/predict", json=TICKET)
    assert response.status_code == 200, response.text
    body = response.json()
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    expected = expected_scores(bundle_dir, _raw_logits(bundle_dir, TICKET["subject"], TICKET["text"]))[0]
    assert list(body["scores"]) == manifest["labels"]
    np.testing.assert_allclose(list(body["scores"].values()), expected, atol=1e-6)
    assert body["label_id"] == int(np.argmax(expected))
    assert body["label"] == manifest["labels"][body["label_id"]]
    assert body["confidence"] == pytest.approx(float(expected.max()))
    assert body["truncated"] is False
    assert body["model_version"] == manifest["model_version"]


def test_subject_is_optional_and_used(client: TestClient[Litestar], bundle_dir: Path) -> None:
    without = client.post("/predict", json={"text": TICKET["text"]}).json()
    null_subject = client.post("/predict", json={"text": TICKET["text"], "subject": None}).json()
    expected = expected_scores(bundle_dir, _raw_logits(bundle_dir, "", TICKET["text"]))[0]
    np.testing.assert_allclose(list(without["scores"].values()), expected, atol=1e-6)
    assert null_subject["scores"] == without["scores"]


def test_unknown_fields_are_ignored(client: TestClient[Litestar]) -> None:
    response = client.post("/predict", json={**TICKET, "customer_id": 7})
    assert response.status_code == 200


def test_truncation_flag(client: TestClient[Litestar]) -> None:
    before = _metric(client, "ticket_triage_truncated_inputs_total")
    long = client.post("/predict", json={"text": "printer jam " * 1000}).json()
    short = client.post("/predict", json={"text": "printer jam"}).json()
    assert long["truncated"] is True
    assert short["truncated"] is False
    assert _metric(client, "ticket_triage_truncated_inputs_total") == before + 1


@pytest.fixture(scope="module")
def client_fp32(bundle_dir_fp32: Path) -> Iterator[TestClient[Litestar]]:
    with ready_client(make_settings(bundle_dir_fp32)) as c:
        yield c


def test_batch_answers_in_input_order(client_fp32: TestClient[Litestar]) -> None:
    items = [
        {"text": "My invoice shows the wrong amount."},
        {"text": "Server room flooded, all systems down, need help now!", "subject": "Emergency"},
        {"text": "Wie ändere ich mein Passwort?"},
        {"text": "printer jam " * 500},
        {"text": "Solicito información sobre su API.", "subject": "Consulta"},
    ]
    response = client_fp32.post("/predict/batch", json={"items": items})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == len(items)
    for item, prediction in zip(items, predictions, strict=True):
        single = client_fp32.post("/predict", json=item).json()
        assert prediction["label"] == single["label"]
        np.testing.assert_allclose(
            list(prediction["scores"].values()), list(single["scores"].values()), atol=1e-5
        )
        assert prediction["truncated"] == single["truncated"]
    assert [p["truncated"] for p in predictions] == [False, False, False, True, False]


# --- headers ---------------------------------------------------------------------------------------


def test_request_id_is_echoed(client: TestClient[Litestar]) -> None:
    response = client.post("/predict", json=TICKET, headers={"X-Request-ID": "req-42.a"})
    assert response.headers["x-request-id"] == "req-42.a"


@pytest.mark.parametrize("incoming", [None, "", "x" * 200, "bad id with spaces", "<script>"])
def test_request_id_is_generated_when_missing_or_unusable(
    client: TestClient[Litestar], incoming: str | None
) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = client.post("/predict", json=TICKET, headers=headers)
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("GET", "/predict"), ("POST", "/health")])
def test_request_id_on_unrouted_responses(client: TestClient[Litestar], method: str, path: str) -> None:
    response = client.request(method, path, headers={"X-Request-ID": "abc"})
    assert response.status_code in {404, 405}
    assert response.headers["x-request-id"] == "abc"
    assert response.json()["status_code"] == response.status_code


def test_timing_headers(client: TestClient[Litestar]) -> None:
    for path, body in [("/predict", TICKET), ("/predict/batch", {"items": [TICKET, TICKET]})]:
        response = client.post(path, json=body)
        for name in ("x-tokenization-time-ms", "x-queue-time-ms", "x-inference-time-ms"):
            assert float(response.headers[name]) >= 0.0
        assert float(response.headers["x-inference-time-ms"]) > 0.0
        assert re.fullmatch(
            r"tok;dur=[\d.]+, queue;dur=[\d.]+, inf;dur=[\d.]+", response.headers["server-timing"]
        )


# --- bad input -------------------------------------------------------------------------------------

BAD_INPUT = [
    ("/predict", b'{"text": ', JSON, 400, "the body is not valid JSON"),
    ("/predict", b"", JSON, 400, "not valid JSON"),
    ("/predict", b'{"text": "caf\xe9"}', JSON, 400, "the body is not valid UTF-8"),
    (
        "/predict",
        b'{"text": "x"}',
        {"Content-Type": "text/plain"},
        415,
        "Content-Type 'text/plain' is not supported",
    ),
    (
        "/predict",
        b"text=x",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "send the body as JSON",
    ),
    ("/predict", b'{"text": "x"}', {}, 415, "the Content-Type header is missing"),
    (
        "/predict",
        b'{"text": "x"}',
        {"Content-Type": "application/json; charset=latin-1"},
        415,
        "must be UTF-8",
    ),
    ("/predict", b"{}", JSON, 422, "Object missing required field `text`"),
    ("/predict", b'{"text": 5}', JSON, 422, "Expected `str`, got `int`"),
    ("/predict", b'{"text": null}', JSON, 422, "Expected `str`, got `null`"),
    ("/predict", b'{"text": "x", "subject": ["a"]}', JSON, 422, "Expected `str | null`, got `array`"),
    ("/predict", b'["x"]', JSON, 422, "Expected `object`, got `array`"),
    ("/predict", b'{"text": ""}', JSON, 422, "text is empty or whitespace only"),
    ("/predict", b'{"text": " \\n\\t ", "subject": "s"}', JSON, 422, "text is empty or whitespace only"),
    ("/predict/batch", b"{}", JSON, 422, "Object missing required field `items`"),
    ("/predict/batch", b'{"items": []}', JSON, 422, "Expected `array` of length >= 1"),
    ("/predict/batch", b'{"items": {"text": "x"}}', JSON, 422, "Expected `array`, got `object`"),
    ("/predict/batch", b'{"items": [{"text": "a"}, {"text": 1}]}', JSON, 422, "Expected `str`, got `int`"),
    ("/predict/batch", b'{"items": [{"text": "a"}, {"text": "  "}]}', JSON, 422, "items[1].text is empty"),
    ("/predict/batch", b'{"text": "x"}', {"Content-Type": "text/csv"}, 415, "not supported"),
]


@pytest.mark.parametrize(("path", "body", "headers", "status", "fragment"), BAD_INPUT)
def test_bad_input_gets_a_clear_4xx(
    client: TestClient[Litestar], path: str, body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["status_code"] == status
    assert error["error_type"] == ERROR_TYPES[status]
    assert fragment in json.dumps(error), error


@pytest.fixture(scope="module")
def small_limits_client(bundle_dir: Path) -> Iterator[TestClient[Litestar]]:
    with ready_client(make_settings(bundle_dir, max_text_chars=1000, max_batch_items=3)) as c:
        yield c


def test_text_over_the_character_cap_is_413(small_limits_client: TestClient[Litestar]) -> None:
    ok = small_limits_client.post("/predict", json={"text": "a" * 990, "subject": "b" * 10})
    assert ok.status_code == 200
    response = small_limits_client.post("/predict", json={"text": "a" * 990, "subject": "b" * 11})
    assert response.status_code == 413
    assert "1001 characters, the limit is 1000 (MAX_TEXT_CHARS)" in response.json()["detail"]
    batch = small_limits_client.post("/predict/batch", json={"items": [{"text": "ok"}, {"text": "a" * 1001}]})
    assert batch.status_code == 413
    assert batch.json()["detail"].startswith("items[1].text")


def test_too_many_batch_items_is_413(small_limits_client: TestClient[Litestar]) -> None:
    assert small_limits_client.post("/predict/batch", json={"items": [TICKET] * 3}).status_code == 200
    response = small_limits_client.post("/predict/batch", json={"items": [TICKET] * 4})
    assert response.status_code == 413
    assert "items has 4 entries, the limit is 3 (MAX_BATCH_ITEMS)" in response.json()["detail"]


def test_oversized_body_is_413_before_parsing(small_limits_client: TestClient[Litestar]) -> None:
    response = small_limits_client.post(
        "/predict", content=b'{"text": "' + b"a" * (2 << 20) + b'"}', headers=JSON
    )
    assert response.status_code == 413
    assert response.json()["status_code"] == 413


# --- operations endpoints --------------------------------------------------------------------------


def test_metrics_increment(client: TestClient[Litestar]) -> None:
    requests_before = _metric(client, "ticket_triage_http_requests_total", route="/predict", status="200")
    label = client.post("/predict", json=TICKET).json()["label"]
    bad = _metric(client, "ticket_triage_http_requests_total", route="/predict", status="422")
    predictions_before = _metric(client, "ticket_triage_predictions_total", label=label)
    tokens_before = _metric(client, "ticket_triage_input_tokens_count")
    inference_before = _metric(client, "ticket_triage_inference_duration_seconds_count")
    client.post("/predict", json=TICKET)
    client.post("/predict", json={"text": " "})
    assert (
        _metric(client, "ticket_triage_http_requests_total", route="/predict", status="200")
        == requests_before + 2
    )
    assert _metric(client, "ticket_triage_http_requests_total", route="/predict", status="422") == bad + 1
    assert _metric(client, "ticket_triage_predictions_total", label=label) == predictions_before + 1
    assert _metric(client, "ticket_triage_input_tokens_count") == tokens_before + 1
    assert _metric(client, "ticket_triage_inference_duration_seconds_count") == inference_before + 1
    assert (
        _metric(client, "ticket_triage_http_request_duration_seconds_count", route="/predict", status="200")
        >= 2
    )
    text = client.get("/metrics").text
    for name in (
        "ticket_triage_tokenization_duration_seconds_bucket",
        "ticket_triage_queue_wait_seconds_bucket",
        "ticket_triage_batch_size_items_bucket",
        "ticket_triage_queue_depth_items",
        "ticket_triage_ready 1.0",
        "ticket_triage_model_info{",
        "process_resident_memory_bytes",
    ):
        assert name in text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_unrouted_requests_are_counted_without_their_path(client: TestClient[Litestar]) -> None:
    before = _metric(client, "ticket_triage_http_requests_total", route="<unmatched>", status="404")
    client.get("/wp-admin/secret")
    assert (
        _metric(client, "ticket_triage_http_requests_total", route="<unmatched>", status="404") == before + 1
    )
    assert "wp-admin" not in client.get("/metrics").text


def test_openapi_schema(client: TestClient[Litestar]) -> None:
    response = client.get("/schema")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/predict", "/predict/batch", "/health", "/ready", "/metrics"} <= set(schema["paths"])
    assert {"400", "413", "415", "422", "429", "503"} <= set(schema["paths"]["/predict"]["post"]["responses"])
    assert client.get("/schema/openapi.json").json() == schema


def test_index_page(client: TestClient[Litestar]) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == (REPO_ROOT / "server" / "static" / "index.html").read_text(encoding="utf-8")


def _assert_strict_csp(headers: Any) -> None:
    policy = headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers["x-content-type-options"] == "nosniff"


def test_page_and_static_files_have_a_strict_csp(client: TestClient[Litestar]) -> None:
    _assert_strict_csp(client.get("/").headers)
    static = sorted(p for p in (REPO_ROOT / "server" / "static").iterdir() if p.suffix in {".js", ".css"})
    for path in static:
        response = client.get(f"/static/{path.name}")
        assert response.status_code == 200, path.name
        assert response.content == path.read_bytes()
        _assert_strict_csp(response.headers)
    missing = client.get("/static/no-such-file.js")
    assert missing.status_code == 404
    assert missing.json()["error_type"] == "not_found"


# --- readiness, back-pressure, failures ------------------------------------------------------------


class GatedEngine(Engine):
    """The real engine; warm-up and (optionally) inference wait for a gate the test opens."""

    warmup_gate: threading.Event
    infer_gate: threading.Event | None = None
    entered: threading.Semaphore
    warmed = False

    def warm_up(self) -> None:
        assert self.warmup_gate.wait(timeout=30)
        super().warm_up()
        self.warmed = True

    def infer(self, batch: Sequence[Encoded]) -> np.ndarray:
        if self.infer_gate is not None and self.warmed:
            self.entered.release()
            assert self.infer_gate.wait(timeout=30)
        return super().infer(batch)


def _gated_factory(warmup_gate: threading.Event, infer_gate: threading.Event | None = None) -> Any:
    def factory(bundle: Bundle, threads: int) -> Engine:
        engine = GatedEngine.load(bundle, threads)
        assert isinstance(engine, GatedEngine)
        engine.warmup_gate, engine.infer_gate, engine.entered = (
            warmup_gate,
            infer_gate,
            threading.Semaphore(0),
        )
        return engine

    return factory


def test_ready_only_after_warm_up(bundle_dir: Path) -> None:
    gate = threading.Event()
    app_kwargs = {"engine_factory": _gated_factory(gate), "bundle": load_bundle(bundle_dir)}
    from server.app import create_app

    with TestClient(create_app(make_settings(bundle_dir), **app_kwargs)) as client:
        assert client.get("/health").status_code == 200
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "loading"
        assert response.headers["retry-after"] == "1"
        early = client.post("/predict", json=TICKET)
        assert early.status_code == 503
        assert "still loading; retry when GET /ready answers 200" in early.json()["detail"]
        gate.set()
        from tests.server.conftest import wait_ready

        wait_ready(client)
        assert client.post("/predict", json=TICKET).status_code == 200


def test_full_queue_answers_429_with_retry_after(bundle_dir: Path) -> None:
    warm, hold = threading.Event(), threading.Event()
    warm.set()
    settings = make_settings(
        bundle_dir,
        inference_workers=1,
        max_batch_size=1,
        max_queue_size=1,
        max_batch_items=1,
        retry_after_s=2,
    )
    with ready_client(settings, engine_factory=_gated_factory(warm, hold)) as client:
        engine: Any = client.app.state.runtime.service.engine
        results: list[int] = []

        def call() -> None:
            results.append(client.post("/predict", json=TICKET).status_code)

        running = threading.Thread(target=call)
        running.start()
        assert engine.entered.acquire(timeout=10)  # the first request holds the only worker
        queued = threading.Thread(target=call)
        queued.start()
        runtime = client.app.state.runtime
        for _ in range(500):
            if runtime.service.batcher.queue_depth == 1:
                break
            threading.Event().wait(0.01)
        refused = client.post("/predict", json=TICKET)
        hold.set()
        running.join(10)
        queued.join(10)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "2"  # nothing drained yet: RETRY_AFTER_S
        assert refused.json()["error_type"] == "overloaded"
        assert "the server is at capacity" in refused.json()["detail"]
        assert sorted(results) == [200, 200]
        assert _metric(client, "ticket_triage_rejected_requests_total", reason="overloaded") == 1


def test_failed_load_is_reported(bundle_copy: Path) -> None:
    (bundle_copy / "model.onnx").write_bytes(b"not an onnx model")
    messages: list[str] = []
    from server.app import create_app

    with TestClient(create_app(make_settings(bundle_copy), on_fatal=messages.append)) as client:
        for _ in range(500):
            if messages:
                break
            threading.Event().wait(0.01)
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "failed"
        assert "model.onnx" in response.json()["detail"]
        assert client.post("/predict", json=TICKET).status_code == 503
    assert len(messages) == 1 and "re-run" in messages[0]


class BrokenEngine(Engine):
    """The real engine, with a failure that shows after warm-up: in ORT (``infer``) or in scoring."""

    warmed = False

    def warm_up(self) -> None:
        super().warm_up()
        self.warmed = True

    def infer(self, batch: Sequence[Encoded]) -> np.ndarray:
        if self.warmed:
            raise RuntimeError("simulated failure in the inference path")
        return super().infer(batch)


class BuggyEngine(BrokenEngine):
    def infer(self, batch: Sequence[Encoded]) -> np.ndarray:
        return Engine.infer(self, batch)

    def predictions(self, logits: np.ndarray) -> Any:
        raise RuntimeError("simulated bug in the scoring code")


def test_inference_failure_is_a_logged_json_424(bundle_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(bundle_dir)
    with ready_client(settings, engine_factory=BrokenEngine.load) as client:
        response = client.post("/predict", json=TICKET, headers={"X-Request-ID": "bug-1"})
        assert client.get("/ready").status_code == 200  # one failed batch does not make the server unready
    assert response.status_code == 424
    assert response.json() == {
        "status_code": 424,
        "error_type": "inference",
        "detail": "inference failed for this request; it is logged under request id bug-1",
    }
    assert "simulated failure" not in response.text  # no internals leak to the client
    assert "inference failed (request_id=bug-1)" in caplog.text
    assert "simulated failure in the inference path" in caplog.text


def test_server_bugs_are_a_logged_json_500(bundle_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(bundle_dir)
    with ready_client(settings, engine_factory=BuggyEngine.load) as client:
        response = client.post("/predict", json=TICKET, headers={"X-Request-ID": "bug-2"})
    assert response.status_code == 500
    assert response.json() == {
        "status_code": 500,
        "error_type": "internal",
        "detail": "internal server error; it is logged under request id bug-2",
    }
    assert "simulated bug" not in response.text
    assert "unhandled error on POST /predict (request_id=bug-2)" in caplog.text
    assert "simulated bug in the scoring code" in caplog.text


def test_request_log_line_per_request(bundle_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="server.access")
    with ready_client(make_settings(bundle_dir, request_log=True)) as client:
        client.post("/predict", json=TICKET, headers={"X-Request-ID": "log-1"})
        client.post("/predict", json={"text": ""}, headers={"X-Request-ID": "log-2"})
    lines = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert any(re.fullmatch(r"POST /predict 200 [\d.]+ms request_id=log-1", line) for line in lines), lines
    assert any(re.fullmatch(r"POST /predict 422 [\d.]+ms request_id=log-2", line) for line in lines), lines
