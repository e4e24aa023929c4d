"""Fuzz the real server from its own OpenAPI schema (schemathesis) and with raw bytes: never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.server.conftest import ServerProcess

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 60  # per operation and mode: bounded, a few seconds each against the tiny model


def test_schema_fuzz_no_server_errors(live_server: ServerProcess) -> None:
    """Every operation of GET /schema/openapi.json, schema-valid and schema-violating cases (bounded)."""
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {"/predict", "/predict/batch", "/ready", "/health", "/metrics"}
    seen: list[int] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def call(case: schemathesis.Case) -> None:
                response = case.call(base_url=live_server.base_url, timeout=30)
                seen.append(response.status_code)
                assert response.status_code < 500, (
                    f"{case.method} {case.path} {case.body!r} -> {response.status_code}: {response.text}"
                )
                if response.status_code >= 400:
                    assert "detail" in response.json()

            try:
                call()
            except Unsatisfiable:
                # nothing to violate: the operation takes no parameters and no body (GET /health, ...)
                assert mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET"
    assert 200 in seen and any(400 <= s < 500 for s in seen)  # both valid and invalid requests were tried


@pytest.fixture(scope="module")
def http(live_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        yield client


@given(
    body=st.one_of(
        st.binary(max_size=400),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=30),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.sampled_from(["text", "subject", "items", "x"]), children, max_size=4)
            ),
            max_leaves=12,
        ).map(lambda v: httpx.Request("POST", "/", json=v).content),
    ),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "",
            "application/x-www-form-urlencoded",
            "application/problem+json",
        ]
    ),
    path=st.sampled_from(["/predict", "/predict/batch"]),
)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_raw_bodies_no_server_errors(http: httpx.Client, body: bytes, content_type: str, path: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post(path, content=body, headers=headers)
    assert response.status_code < 500, (
        f"{path} {content_type!r} {body[:80]!r} -> {response.status_code}: {response.text}"
    )
    assert "detail" in response.json() or response.status_code == 200
