"""Realistic load for the ticket-triage server: ``locust -f loadtests/locustfile.py`` (docs/loadtest.md).

Traffic mix per simulated user: single predictions on real tickets (all languages of the payload file), batch
predictions, long tickets that must be truncated (``truncated: true``), and a small share of invalid requests
whose expected 4xx counts as a success. The load shape (steady, ramp, spike) follows ``-u``/``-r``/``-t``; the
run exits non-zero when the failure ratio, p95 or p99 exceed the limits given as options.

Custom options (each also an env var, e.g. ``LOCUST_LOAD_SHAPE=spike``): see ``locust -f ... --help`` or
``_add_arguments`` below.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:  # locust puts only the cwd and this file's directory on sys.path
    sys.path.insert(0, _REPO_ROOT)

from locust import FastHttpUser, LoadTestShape, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.runners import WorkerRunner  # noqa: E402

from loadtests.payloads import (  # noqa: E402
    DEFAULT_PAYLOAD_FILE,
    InvalidCase,
    PayloadError,
    Ticket,
    check_prediction,
    invalid_cases,
    load_tickets,
    make_long_tickets,
)
from loadtests.shapes import DEFAULT_RUN_TIME_S, SHAPES, ShapeSpec, parse_shape, target_at  # noqa: E402
from loadtests.thresholds import Limits, RunSummary, violations  # noqa: E402

logger = logging.getLogger("loadtests")


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("ticket-triage", "payloads, load shape and pass/fail thresholds")
    group.add_argument(
        "--payload-file",
        env_var="LOCUST_PAYLOAD_FILE",
        default=str(DEFAULT_PAYLOAD_FILE),
        help="ticket CSV with 'body' (and 'subject', 'language') columns; default: the embedded sample",
    )
    group.add_argument(
        "--payload-limit", env_var="LOCUST_PAYLOAD_LIMIT", type=int, default=5000, help="rows read at most"
    )
    group.add_argument(
        "--load-shape",
        env_var="LOCUST_LOAD_SHAPE",
        default="steady",
        choices=list(SHAPES),
        help="steady: -u users all run; ramp: 5 steps up to -u; spike: -u/4 users with a burst to -u "
        "mid-run; "
        "storm: -u users at once that retry refused (429/503) requests immediately",
    )
    group.add_argument(
        "--storm-max-retries",
        env_var="LOCUST_STORM_MAX_RETRIES",
        type=int,
        default=1000,
        help="storm shape: immediate retries of one refused request at most",
    )
    group.add_argument(
        "--batch-max", env_var="LOCUST_BATCH_MAX", type=int, default=8, help="largest batch request sent"
    )
    group.add_argument(
        "--long-chars",
        env_var="LOCUST_LONG_CHARS",
        type=int,
        default=3000,
        help="characters per long ticket: above the model's max tokens, below the server's character cap",
    )
    group.add_argument(
        "--server-max-text-chars",
        env_var="LOCUST_SERVER_MAX_TEXT_CHARS",
        type=int,
        default=0,
        help="the server's hard character cap; when set, over-cap requests (expect 413) join the invalid mix",
    )
    group.add_argument(
        "--server-max-batch",
        env_var="LOCUST_SERVER_MAX_BATCH",
        type=int,
        default=0,
        help="the server's max batch size; when set, oversized batches (expect 413) join the invalid mix",
    )
    group.add_argument(
        "--max-fail-ratio", env_var="LOCUST_MAX_FAIL_RATIO", type=float, default=0.01, help="fail above this"
    )
    group.add_argument(
        "--max-p95-ms", env_var="LOCUST_MAX_P95_MS", type=float, default=2000.0, help="fail above this p95"
    )
    group.add_argument(
        "--max-p99-ms", env_var="LOCUST_MAX_P99_MS", type=float, default=5000.0, help="fail above this p99"
    )
    group.add_argument("--payload-seed", env_var="LOCUST_PAYLOAD_SEED", type=int, default=0, help="RNG seed")
    group.add_argument(
        "--auth-token",
        env_var="LOCUST_AUTH_TOKEN",
        default="",
        help="sent as 'Authorization: Bearer ...' (a Cloud Run identity token); never logged",
    )


@dataclass(slots=True)
class PayloadPool:
    """Everything the users send, built once per process at ``init``."""

    tickets: list[Ticket]
    long_tickets: list[Ticket]
    invalid: list[InvalidCase]
    batch_max: int
    rng: random.Random
    auth_header: dict[str, str]
    storm: bool = False
    storm_max_retries: int = 1000


_pool: PayloadPool | None = None


@events.init.add_listener
def _build_payloads(environment: Environment, **_: Any) -> None:
    global _pool
    options = environment.parsed_options
    if options is None:  # used as a library (no command line): keep the defaults
        options_dict: dict[str, Any] = {}
    else:
        options_dict = vars(options)
    payload_file = Path(options_dict.get("payload_file") or DEFAULT_PAYLOAD_FILE)
    try:
        tickets = load_tickets(payload_file, limit=options_dict.get("payload_limit") or None)
    except PayloadError as exc:
        logger.error("%s", exc)
        sys.exit(2)
    seed = int(options_dict.get("payload_seed") or 0)
    long_chars = int(options_dict.get("long_chars") or 3000)
    max_chars = int(options_dict.get("server_max_text_chars") or 0) or None
    max_batch = int(options_dict.get("server_max_batch") or 0) or None
    if max_chars is not None and long_chars >= max_chars:
        logger.error(
            "--long-chars %d must stay below --server-max-text-chars %d (long tickets would all get 413)",
            long_chars,
            max_chars,
        )
        sys.exit(2)
    _pool = PayloadPool(
        tickets=tickets,
        long_tickets=make_long_tickets(tickets, min_chars=long_chars, seed=seed),
        invalid=invalid_cases(max_text_chars=max_chars, max_batch=max_batch),
        batch_max=max(2, int(options_dict.get("batch_max") or 8)),
        rng=random.Random(seed),
        auth_header={"Authorization": f"Bearer {token}"} if (token := options_dict.get("auth_token")) else {},
        storm=str(options_dict.get("load_shape") or "steady").lower() == "storm",
        storm_max_retries=int(options_dict.get("storm_max_retries") or 1000),
    )
    languages = sorted({ticket.language for ticket in tickets})
    logger.info(
        "payloads: %d tickets from %s (languages: %s)", len(tickets), payload_file, ", ".join(languages)
    )


def _payloads() -> PayloadPool:
    if _pool is None:
        raise RuntimeError("payloads were not built: run this file through locust (events.init builds them)")
    return _pool


class TicketUser(FastHttpUser):
    """A support tool calling the triage API: mostly single tickets, some batches, a few bad requests."""

    wait_time = constant(0)  # closed loop: each user sends its next request at once
    default_headers = {"Accept": "application/json"}  # noqa: RUF012 (locust's own class attribute)

    def _headers(self, content_type: str = "application/json") -> dict[str, str]:
        return {
            "Content-Type": content_type,
            "X-Request-ID": f"locust-{uuid.uuid4().hex[:16]}",
            **_payloads().auth_header,
        }

    def _predict(self, ticket: Ticket, name: str, expect_truncated: bool | None) -> None:
        pool = _payloads()
        for _ in range(1 + (pool.storm_max_retries if pool.storm else 0)):
            if not self._predict_once(ticket, name, expect_truncated, pool.storm):
                return

    def _predict_once(self, ticket: Ticket, name: str, expect_truncated: bool | None, storm: bool) -> bool:
        """One attempt; True when it was refused (429/503) in a storm and should be retried at once.

        In a storm, refusals are the expected answer to overload: they are counted under their own name
        (``/predict [refused 429]``), so that the request's own statistics hold the accepted attempts only;
        a 5xx other than 503 is a failure.
        """
        with self.client.post(
            "/predict",
            data=json.dumps(ticket.request()),
            headers=self._headers(),
            name=name,
            catch_response=True,
        ) as response:
            if storm and response.status_code in (429, 503):
                response.request_meta["name"] = f"/predict [refused {response.status_code}]"
                response.success()
                return True
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {(response.text or '')[:200]}")
                return False
            problem = check_prediction(response.json())
            if problem is None and expect_truncated is not None:
                truncated = response.json().get("truncated")
                if truncated is not expect_truncated:
                    problem = f"expected truncated={expect_truncated}, got {truncated!r}"
            if problem:
                response.failure(problem)
            else:
                response.success()
        return False

    @task(14)
    def predict_single(self) -> None:
        pool = _payloads()
        self._predict(pool.rng.choice(pool.tickets), "/predict", expect_truncated=None)

    @task(2)
    def predict_long(self) -> None:
        pool = _payloads()
        self._predict(pool.rng.choice(pool.long_tickets), "/predict [long]", expect_truncated=True)

    @task(3)
    def predict_batch(self) -> None:
        pool = _payloads()
        items = [
            ticket.request()
            for ticket in pool.rng.choices(pool.tickets, k=pool.rng.randint(2, pool.batch_max))
        ]
        with self.client.post(
            "/predict/batch",
            data=json.dumps({"items": items}),
            headers=self._headers(),
            name="/predict/batch",
            catch_response=True,
        ) as response:
            if _payloads().storm and response.status_code in (429, 503):
                response.request_meta["name"] = f"/predict/batch [refused {response.status_code}]"
                response.success()
                return
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {(response.text or '')[:200]}")
                return
            predictions = (response.json() or {}).get("predictions")
            if not isinstance(predictions, list) or len(predictions) != len(items):
                response.failure(f"expected {len(items)} predictions, got {predictions!r:.200}")
                return
            problems = [p for p in (check_prediction(item) for item in predictions) if p]
            if problems:
                response.failure(problems[0])
            else:
                response.success()

    @task(1)
    def invalid_request(self) -> None:
        case = _payloads().rng.choice(_payloads().invalid)
        with self.client.post(
            case.path,
            data=case.body,  # type: ignore[arg-type]  # locust documents bytes, annotates str | dict
            headers=self._headers(case.content_type),
            name=f"{case.path} [invalid:{case.name}]",
            catch_response=True,
        ) as response:
            if _payloads().storm and response.status_code in (429, 503):  # refused before it was read
                response.request_meta["name"] = f"{case.path} [refused {response.status_code}]"
                response.success()
            elif response.status_code in case.expected:
                response.success()
            else:
                expected = "/".join(str(code) for code in sorted(case.expected))
                response.failure(
                    f"expected {expected}, got {response.status_code}: {(response.text or '')[:200]}"
                )


class SelectableShape(LoadTestShape):
    """steady / ramp / spike (``--load-shape``), scaled by the usual ``-u``, ``-r`` and ``-t`` options."""

    use_common_options = True
    _spec: ShapeSpec | None = None

    def tick(self) -> tuple[int, float] | None:
        if self._spec is None:
            self._spec = self._build_spec()
        return target_at(self._spec, self.get_run_time())

    def _build_spec(self) -> ShapeSpec:
        options = self.runner.environment.parsed_options if self.runner else None
        users = int(getattr(options, "num_users", None) or 1)
        spawn_rate = float(getattr(options, "spawn_rate", None) or users)
        run_time = float(getattr(options, "run_time", None) or DEFAULT_RUN_TIME_S)
        spec = ShapeSpec(parse_shape(getattr(options, "load_shape", "steady")), users, spawn_rate, run_time)
        logger.info(
            "load shape %s: peak %d users, spawn rate %.1f/s, %.0f s", spec.name, users, spawn_rate, run_time
        )
        return spec


@events.quitting.add_listener
def _apply_thresholds(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return  # the master judges the aggregated stats
    options = environment.parsed_options
    limits = Limits(
        max_fail_ratio=float(getattr(options, "max_fail_ratio", 0.01)),
        max_p95_ms=float(getattr(options, "max_p95_ms", 2000.0)),
        max_p99_ms=float(getattr(options, "max_p99_ms", 5000.0)),
    )
    total = environment.stats.total
    summary = RunSummary(
        num_requests=total.num_requests,
        num_failures=total.num_failures,
        p95_ms=float(total.get_response_time_percentile(0.95) or 0.0),
        p99_ms=float(total.get_response_time_percentile(0.99) or 0.0),
    )
    problems = violations(summary, limits)
    for problem in problems:
        logger.error("threshold failed: %s", problem)
    if problems:
        environment.process_exit_code = 1
    else:
        logger.info(
            "thresholds passed: %d requests, failure ratio %.2f%%, p95 %.0f ms, p99 %.0f ms",
            summary.num_requests,
            100 * summary.fail_ratio,
            summary.p95_ms,
            summary.p99_ms,
        )
        environment.process_exit_code = 0
