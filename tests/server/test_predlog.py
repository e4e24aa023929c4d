"""The prediction log (docs/contracts.md, section 5): contents, text opt-in, and failures that never break a
prediction."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from server.language import guess_language
from server.predlog import PredictionLog, utc_timestamp
from tests.server.conftest import make_settings, ready_client
from tests.server.test_api import _metric

CONTRACT_KEYS = {
    "ts",
    "model_version",
    "label",
    "confidence",
    "scores",
    "n_chars",
    "n_tokens",
    "truncated",
    "unk_ratio",
    "language",
}
TICKETS = [
    {"subject": "Login", "text": "I cannot log in to my account and the reset link does not work."},
    {"text": "Unser Server ist seit heute Morgen nicht erreichbar und wir können nicht arbeiten."},
]


def _read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_log_records_follow_the_contract(bundle_dir: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "predictions.jsonl"
    with ready_client(make_settings(bundle_dir, prediction_log_path=log_path)) as client:
        single = client.post("/predict", json=TICKETS[0], headers={"X-Request-ID": "r1"}).json()
        batch = client.post("/predict/batch", json={"items": [TICKETS[1], {"text": "word " * 500}]}).json()
    records = _read(log_path)  # the app's shutdown flushed the log
    assert len(records) == 3
    for record, answer in zip(records, [single, *batch["predictions"]], strict=True):
        assert set(record) >= CONTRACT_KEYS
        assert "text" not in record  # text only when explicitly enabled
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(record["ts"]))
        for key in ("model_version", "label", "confidence", "scores", "truncated"):
            assert record[key] == answer[key]
        assert 0.0 <= float(record["unk_ratio"]) <= 1.0  # type: ignore[arg-type]
        assert int(record["n_tokens"]) > 0  # type: ignore[call-overload]
    assert records[0]["n_chars"] == len("Login\n" + TICKETS[0]["text"])
    assert records[0]["request_id"] == "r1"
    assert [r["language"] for r in records[:2]] == ["en", "de"]
    assert records[2]["truncated"] is True


def test_text_is_logged_only_when_enabled(bundle_dir: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "p.jsonl"
    settings = make_settings(bundle_dir, prediction_log_path=log_path, prediction_log_text=True)
    with ready_client(settings) as client:
        assert client.post("/predict", json=TICKETS[0]).status_code == 200
    (record,) = _read(log_path)
    assert record["text"] == "Login\n" + TICKETS[0]["text"]


@pytest.mark.parametrize("kind", ["unwritable", "disk_full"])
def test_log_failures_never_break_predictions(
    bundle_dir: Path, tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    if kind == "unwritable":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        log_path = blocker / "predictions.jsonl"  # cannot be created, even by root
    else:
        log_path = Path("/dev/full")  # every write fails with ENOSPC
        if not log_path.exists():
            pytest.skip("/dev/full is not available on this system")
    with ready_client(make_settings(bundle_dir, prediction_log_path=log_path)) as client:
        for ticket in TICKETS * 2:
            assert client.post("/predict", json=ticket).status_code == 200
        deadline = time.monotonic() + 10
        while (
            _metric(client, "ticket_triage_prediction_log_dropped_total") < 4 and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert _metric(client, "ticket_triage_prediction_log_dropped_total") == 4
    assert "prediction log" in caplog.text


def test_a_full_queue_drops_instead_of_blocking(tmp_path: Path) -> None:
    dropped: list[int] = []
    log = PredictionLog(tmp_path / "p.jsonl", queue_size=2, on_drop=dropped.append)  # writer not started
    started = time.perf_counter()
    for i in range(5):
        log.log({"i": i}, "text")
    assert time.perf_counter() - started < 0.5
    assert log.dropped == 3 and sum(dropped) == 3
    log.start()
    log.close()
    assert [r["i"] for r in _read(tmp_path / "p.jsonl")] == [0, 1]


def test_utc_timestamp() -> None:
    assert utc_timestamp(0.5) == "1970-01-01T00:00:00.500Z"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("My printer does not work and I need it for the meeting.", "en"),
        ("Ich kann mich nicht anmelden, bitte helfen Sie mir.", "de"),
        ("No puedo acceder a mi cuenta, por favor ayúdenme con el problema.", "es"),
        ("Je ne peux pas accéder à mon compte, merci de nous aider avec ce problème.", "fr"),
        ("Não consigo acessar minha conta, por favor ajudem com o problema.", "pt"),
        ("12345 !!!", "unknown"),
    ],
)
def test_language_guess(text: str, language: str) -> None:
    assert guess_language(text) == language


def test_queue_holds_no_text_unless_text_logging_is_on(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.jsonl", include_text=False)  # not started: records stay queued
    log.log({"label": "low"}, "a long ticket text " * 1000)
    queued = log._queue.get_nowait()
    assert queued == ({"label": "low"}, None)
    with_text = PredictionLog(tmp_path / "q.jsonl", include_text=True, max_queued_bytes=100)
    with_text.log({"label": "low"}, "x" * 80)
    with_text.log({"label": "low"}, "y" * 80)  # over the text budget: dropped, counted
    assert with_text.dropped == 1 and with_text._queue.qsize() == 1


def test_language_is_guessed_before_queueing(bundle_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "pred.jsonl"
    settings = make_settings(bundle_dir, prediction_log_path=path)
    with ready_client(settings) as client:
        assert client.post("/predict", json=TICKETS[1]).status_code == 200
    (record,) = _read(path)
    assert record["language"] == guess_language(TICKETS[1]["text"]) == "de"
    assert "text" not in record and isinstance(record["needs_review"], bool)


def test_log_rotates_at_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "pred.jsonl"
    log = PredictionLog(path, max_bytes=2_000, backups=2)
    log.start()
    for i in range(300):
        log.log({"i": i, "pad": "z" * 40})
        if i % 20 == 0:
            time.sleep(0.01)  # several writes, so rotation happens between them
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["pred.jsonl", "pred.jsonl.1", "pred.jsonl.2"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 2_000 + 60 * 1000  # one write may exceed the limit, never grows forever
    newest = [json.loads(line)["i"] for line in path.read_text().splitlines()]
    assert newest[-1] == 299


def test_log_to_stdout(capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    log = PredictionLog(Path("-"))
    log.start()
    log.log({"label": "high", "confidence": 0.9})
    log.close()
    out = capfdbinary.readouterr().out.decode()
    assert json.loads(out.strip().splitlines()[-1]) == {"label": "high", "confidence": 0.9}
