"""Request payloads for load tests and benchmarks: real ticket texts, long tickets, invalid requests.

Plain stdlib (no locust, no pandas) so both the locustfile and the benchmark harness can use it.
"""

from __future__ import annotations

import csv
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAYLOAD_FILE = REPO_ROOT / "data" / "sample" / "tickets.csv"

# Ticket bodies can be long; the csv module's default field limit (128 KiB) is too small for some exports.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class PayloadError(ValueError):
    """A payload file that cannot be used for a load test (missing, unreadable, wrong columns, no rows)."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """One ticket as the API receives it: ``body`` is sent as ``text``."""

    subject: str
    body: str
    language: str = "unknown"

    def request(self) -> dict[str, str]:
        """The JSON body of ``POST /predict`` (and one item of ``POST /predict/batch``)."""
        if self.subject:
            return {"text": self.body, "subject": self.subject}
        return {"text": self.body}


def load_tickets(path: Path | str, limit: int | None = None) -> list[Ticket]:
    """Read tickets (``subject``, ``body``, optional ``language``) from a ticket CSV.

    Any CSV with a ``body`` column works (the embedded sample, the files of ../shared/data/tickets). Literal
    ``\\n`` escapes (how some dataset files store newlines) become real newlines, as the data stage does. Rows
    with an empty body are skipped. ``limit`` keeps the first N usable rows.
    """
    path = Path(path)
    if not path.is_file():
        raise PayloadError(
            f"payload file {path} not found: pass --payload-file (or LOCUST_PAYLOAD_FILE) with a ticket CSV "
            "that has a 'body' column"
        )
    tickets: list[Ticket] = []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "body" not in reader.fieldnames:
                raise PayloadError(
                    f"payload file {path} has no 'body' column (columns: {reader.fieldnames}); "
                    "use a ticket CSV with at least 'body' (and optionally 'subject', 'language')"
                )
            for row in reader:
                body = _unescape(row.get("body") or "").strip()
                if not body:
                    continue
                subject = _unescape(row.get("subject") or "").strip()
                language = (row.get("language") or "").strip() or "unknown"
                tickets.append(Ticket(subject=subject, body=body, language=language))
                if limit is not None and len(tickets) >= limit:
                    break
    except UnicodeDecodeError as exc:
        raise PayloadError(f"payload file {path} is not UTF-8 text: {exc}") from exc
    if not tickets:
        raise PayloadError(f"payload file {path} has no row with a non-empty 'body'")
    return tickets


def _unescape(value: str) -> str:
    return value.replace("\\r\\n", "\n").replace("\\n", "\n")


def make_long_tickets(
    tickets: Sequence[Ticket], min_chars: int, count: int = 20, seed: int = 0
) -> list[Ticket]:
    """Tickets of at least ``min_chars`` characters, made by concatenating real bodies of one language.

    They stand for the long e-mail threads that hit the model's max length, so the server must truncate them
    (and flag ``truncated: true``) rather than fail.
    """
    if min_chars <= 0:
        raise ValueError(f"min_chars must be positive, got {min_chars}")
    rng = random.Random(seed)
    by_language: dict[str, list[Ticket]] = {}
    for ticket in tickets:
        by_language.setdefault(ticket.language, []).append(ticket)
    languages = sorted(by_language)
    long_tickets: list[Ticket] = []
    for index in range(count):
        pool = by_language[languages[index % len(languages)]]
        first = rng.choice(pool)
        parts = [first.body]
        size = len(first.body)
        while size < min_chars:
            part = rng.choice(pool).body
            parts.append(part)
            size += len(part) + 2
        long_tickets.append(Ticket(subject=first.subject, body="\n\n".join(parts), language=first.language))
    return long_tickets


@dataclass(frozen=True, slots=True)
class InvalidCase:
    """A request the server must reject with one of ``expected`` (4xx) statuses, never a 5xx."""

    name: str
    path: str
    body: bytes
    content_type: str
    expected: frozenset[int] = field(default_factory=frozenset)


def invalid_cases(max_text_chars: int | None = None, max_batch: int | None = None) -> list[InvalidCase]:
    """The bad requests a client can send (issue 5, API section), each with the statuses that are right.

    ``max_text_chars`` / ``max_batch`` add the over-limit cases (413) when the server's limits are known.
    """
    as_json = "application/json"
    client_error = frozenset({400, 422})
    cases = [
        InvalidCase("empty-text", "/predict", json.dumps({"text": "   "}).encode(), as_json, client_error),
        InvalidCase(
            "missing-text", "/predict", json.dumps({"subject": "hi"}).encode(), as_json, client_error
        ),
        InvalidCase("wrong-type", "/predict", json.dumps({"text": 42}).encode(), as_json, client_error),
        InvalidCase("invalid-json", "/predict", b'{"text": "unterminated', as_json, client_error),
        InvalidCase("not-utf8", "/predict", b'{"text": "\xff\xfe broken"}', as_json, client_error),
        InvalidCase(
            "wrong-content-type",
            "/predict",
            b"text=hello",
            "application/x-www-form-urlencoded",
            frozenset({400, 415, 422}),
        ),
        InvalidCase(
            "batch-empty",
            "/predict/batch",
            json.dumps({"items": []}).encode(),
            as_json,
            frozenset({400, 413, 422}),
        ),
        InvalidCase(
            "batch-bad-item",
            "/predict/batch",
            json.dumps({"items": [{"text": "ok"}, {"text": ""}]}).encode(),
            as_json,
            client_error,
        ),
    ]
    if max_text_chars is not None:
        too_long = json.dumps({"text": "x" * (max_text_chars + 1)}).encode()
        cases.append(InvalidCase("text-over-cap", "/predict", too_long, as_json, frozenset({413})))
    if max_batch is not None:
        items = [{"text": "printer offline"}] * (max_batch + 1)
        cases.append(
            InvalidCase(
                "batch-too-large",
                "/predict/batch",
                json.dumps({"items": items}).encode(),
                as_json,
                frozenset({413}),
            )
        )
    return cases


def check_prediction(payload: object) -> str | None:
    """Why a ``/predict`` response body is not a valid prediction, or ``None`` when it is."""
    if not isinstance(payload, dict):
        return f"response is {type(payload).__name__}, expected a JSON object"
    label = payload.get("label")
    scores = payload.get("scores")
    confidence = payload.get("confidence")
    if not isinstance(label, str) or not label:
        return f"missing or empty 'label': {payload!r:.200}"
    if not isinstance(scores, dict) or label not in scores:
        return f"'scores' missing or without the predicted label {label!r}"
    if not isinstance(confidence, int | float) or not 0.0 <= float(confidence) <= 1.0:
        return f"'confidence' not a probability: {confidence!r}"
    if not isinstance(payload.get("truncated"), bool):
        return "'truncated' missing or not a boolean"
    return None
