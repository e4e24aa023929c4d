"""loadtests.payloads: ticket CSVs in, request bodies and expected 4xx out (no locust import)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.payloads import (
    DEFAULT_PAYLOAD_FILE,
    PayloadError,
    Ticket,
    check_prediction,
    invalid_cases,
    load_tickets,
    make_long_tickets,
)


def _write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_embedded_sample_is_the_default_and_has_all_five_languages() -> None:
    tickets = load_tickets(DEFAULT_PAYLOAD_FILE)
    assert len(tickets) >= 100
    assert {t.language for t in tickets} >= {"en", "de", "es", "fr", "pt"}
    assert all(t.body.strip() == t.body and t.body for t in tickets)


@pytest.mark.real_data
def test_shared_ticket_file_loads_with_real_newlines(shared_tickets_dir: Path) -> None:
    tickets = load_tickets(shared_tickets_dir / "aa_dataset-tickets-multi-lang-5-2-50-version.csv", limit=50)
    assert len(tickets) == 50
    # this file stores newlines as a literal backslash-n; payloads carry real ones, as the data stage does
    assert not any("\\n" in t.body for t in tickets)
    assert any("\n" in t.body for t in tickets)


def test_rows_without_body_are_skipped_and_subject_is_optional(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "t.csv", 'subject,body,language\nHi,"Printer\\nbroken",en\nX,"   ",de\n,Only body,\n'
    )
    tickets = load_tickets(path)
    assert tickets == [
        Ticket(subject="Hi", body="Printer\nbroken", language="en"),
        Ticket(subject="", body="Only body", language="unknown"),
    ]
    assert tickets[0].request() == {"text": "Printer\nbroken", "subject": "Hi"}
    assert tickets[1].request() == {"text": "Only body"}


def test_limit_keeps_the_first_rows(tmp_path: Path) -> None:
    rows = "".join(f"s{i},b{i}\n" for i in range(10))
    tickets = load_tickets(_write_csv(tmp_path / "t.csv", "subject,body\n" + rows), limit=3)
    assert [t.body for t in tickets] == ["b0", "b1", "b2"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("subject,text\na,b\n", "no 'body' column"),
        ("subject,body\na,\n", "no row with a non-empty 'body'"),
    ],
)
def test_unusable_payload_files_fail_with_a_clear_message(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "t.csv"
    if content is not None:
        _write_csv(path, content)
    with pytest.raises(PayloadError, match=message):
        load_tickets(path)


def test_non_utf8_payload_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"subject,body\na,\xff\xfe\n")
    with pytest.raises(PayloadError, match="not UTF-8"):
        load_tickets(path)


def test_long_tickets_exceed_the_length_and_keep_one_language() -> None:
    tickets = load_tickets(DEFAULT_PAYLOAD_FILE)
    long_tickets = make_long_tickets(tickets, min_chars=3000, count=10, seed=1)
    assert len(long_tickets) == 10
    assert all(len(t.body) >= 3000 for t in long_tickets)
    bodies_by_language: dict[str, set[str]] = {}
    for ticket in tickets:
        bodies_by_language.setdefault(ticket.language, set()).add(ticket.body)
    for ticket in long_tickets:
        # made of real bodies of its own language only
        rest = ticket.body
        for body in sorted(bodies_by_language[ticket.language], key=len, reverse=True):
            rest = rest.replace(body, "")
        assert rest.strip() == ""
    assert len({t.language for t in long_tickets}) == 5
    assert make_long_tickets(tickets, 3000, 10, seed=1) == long_tickets  # deterministic per seed


def test_invalid_cases_expect_only_client_errors_and_limits_add_413() -> None:
    base = invalid_cases()
    assert base
    assert all(case.expected and all(400 <= code < 500 for code in case.expected) for case in base)
    assert {case.name for case in base} >= {"empty-text", "invalid-json", "wrong-content-type", "batch-empty"}
    limited = invalid_cases(max_text_chars=100, max_batch=4)
    extra = {case.name: case for case in limited}.keys() - {case.name for case in base}
    assert extra == {"text-over-cap", "batch-too-large"}
    over_cap = next(case for case in limited if case.name == "text-over-cap")
    assert len(json.loads(over_cap.body)["text"]) == 101 and over_cap.expected == {413}
    too_many = next(case for case in limited if case.name == "batch-too-large")
    assert len(json.loads(too_many.body)["items"]) == 5


def test_check_prediction_accepts_the_api_shape_and_names_what_is_wrong() -> None:
    good = {
        "label": "high",
        "label_id": 2,
        "confidence": 0.8,
        "scores": {"low": 0.1, "medium": 0.1, "high": 0.8},
        "truncated": False,
        "model_version": "v",
    }
    assert check_prediction(good) is None
    assert "label" in (check_prediction({**good, "label": ""}) or "")
    assert "scores" in (check_prediction({**good, "scores": {"low": 1.0}}) or "")
    assert "confidence" in (check_prediction({**good, "confidence": 1.5}) or "")
    assert "truncated" in (check_prediction({**good, "truncated": "no"}) or "")
    assert "JSON object" in (check_prediction([good]) or "")
