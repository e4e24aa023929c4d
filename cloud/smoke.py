"""Smoke test of a deployed revision: does it answer fixed tickets with the labels its bundle gives offline?

    # offline: the bundle's own labels for cloud/smoke/tickets.json (the server's engine, no HTTP)
    python cloud/smoke.py expect --bundle bundles/<model_version> > expected.json
    # online: /ready (retried), then POST /predict per ticket; every label and the model version must match
    SMOKE_TOKEN=<identity token> python cloud/smoke.py check --url https://candidate---svc.run.app \
        --expected expected.json [--retries 30 --delay 2]

``expect`` needs the ``server`` package (the project env, or the server image: ``PYTHONPATH=/app``);
``check`` is standard library only, so it runs in the Cloud SDK image beside ``gcloud`` (cloud/deploy.sh).
Exit codes: 0 passed; 1 the service failed a check (the message says which); 64 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TICKETS = Path(__file__).resolve().parent / "smoke" / "tickets.json"


def expect(bundle_dir: Path, tickets: list[dict[str, str]]) -> dict[str, Any]:
    """The bundle's labels for ``tickets``, computed by the server's own engine (as the revision will)."""
    from server.bundle import load_bundle
    from server.engine import Engine

    engine = Engine.load(load_bundle(bundle_dir))
    cases = []
    for ticket in tickets:  # one at a time: the server's batch composition must not matter
        encoded = engine.tokenize([engine.build_text(ticket.get("subject"), ticket["text"])])
        (prediction,) = engine.predictions(engine.infer(encoded))
        cases.append({**ticket, "label": prediction.label})
    return {"model_version": str(engine.model_version), "cases": cases}


def _request(url: str, token: str | None, body: dict[str, Any] | None, timeout: float) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def check(url: str, expected: dict[str, Any], token: str | None, retries: int, delay_s: float) -> list[str]:
    """Problems found (empty: passed)."""
    base = url.rstrip("/")
    for attempt in range(1, retries + 1):
        try:
            _request(f"{base}/ready", token, None, timeout=10)
            break
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if attempt == retries:
                return [f"{base}/ready did not answer 200 after {retries} tries (last: {exc})"]
            time.sleep(delay_s)
    problems = []
    for case in expected["cases"]:
        try:
            answer = _request(
                f"{base}/predict", token, {"subject": case.get("subject"), "text": case["text"]}, 20
            )
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problems.append(f"POST /predict failed for {case.get('subject')!r}: {exc}")
            continue
        if not isinstance(answer, dict) or answer.get("label") != case["label"]:
            got = answer.get("label") if isinstance(answer, dict) else answer
            problems.append(
                f"{case.get('subject')!r}: label {got!r}, the bundle says {case['label']!r} offline"
            )
        elif answer.get("model_version") != expected["model_version"]:
            problems.append(
                f"model_version {answer.get('model_version')!r}, bundle {expected['model_version']!r}"
            )
    return problems


def field(description: dict[str, Any], name: str, tag: str | None = None) -> str:
    """One field of ``gcloud run services describe --format=json`` for cloud/deploy.sh."""
    status = description.get("status") or {}
    traffic = status.get("traffic") or []
    if name == "url":
        return str(status.get("url") or "")
    if name == "traffic":  # the serving revisions as revision=percent pairs, what --to-revisions takes back
        return ",".join(
            f"{t['revisionName']}={t['percent']}"
            for t in traffic
            if t.get("percent") and t.get("revisionName")
        )
    return next((str(t.get("url") or "") for t in traffic if t.get("tag") == tag), "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloud/smoke.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    exp = commands.add_parser("expect", help="the bundle's offline labels for the smoke tickets (JSON)")
    exp.add_argument("--bundle", type=Path, required=True)
    exp.add_argument("--tickets", type=Path, default=TICKETS)
    chk = commands.add_parser("check", help="smoke-test a URL against expect's output")
    chk.add_argument("--url", required=True)
    chk.add_argument("--expected", type=Path, required=True)
    chk.add_argument("--retries", type=int, default=30, help="tries of /ready")
    chk.add_argument("--delay", type=float, default=2.0, help="seconds between tries of /ready")
    fld = commands.add_parser("field", help="read `gcloud run services describe --format=json` on stdin")
    fld.add_argument("name", choices=("url", "traffic", "tag-url"))
    fld.add_argument("tag", nargs="?")
    args = parser.parse_args(argv)
    if args.command == "field":
        sys.stdout.write(field(json.load(sys.stdin), args.name, args.tag) + "\n")
        return 0
    if args.command == "expect":
        tickets = json.loads(args.tickets.read_text(encoding="utf-8"))
        sys.stdout.write(json.dumps(expect(args.bundle, tickets), indent=2, ensure_ascii=False) + "\n")
        return 0
    try:
        expected = json.loads(args.expected.read_text(encoding="utf-8"))
        if not (expected["cases"] and expected["model_version"]):
            raise ValueError("no cases or no model_version")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(
            f"cloud/smoke.py: {args.expected} is not the output of `cloud/smoke.py expect`: {exc}\n"
        )
        return 64
    problems = check(args.url, expected, os.environ.get("SMOKE_TOKEN") or None, args.retries, args.delay)
    for problem in problems:
        sys.stderr.write(f"smoke: FAIL {problem}\n")
    if not problems:
        sys.stderr.write(f"smoke: {len(expected['cases'])} tickets answered as offline by {args.url}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
