"""benchmarks/shutdown.py: SIGTERM under load against a real server, and the arithmetic of its verdicts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from benchmarks.shutdown import CLOSED, DROPPED, REFUSED, RESET, STOPPING, RunResult, Sent, main, to_markdown

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_summary_splits_requests_at_the_signal() -> None:
    run = RunResult(run=1, clients=2, load_s=1.0, shutdown_timeout_s=8.0, signal_at=10.0)
    run.requests = [
        Sent(9.0, 9.5, "200"),  # before, answered before
        Sent(9.8, 10.4, "200"),  # in flight at the signal, answered
        Sent(9.9, 10.2, "ServerDisconnectedError"),  # in flight, lost: a failure
        Sent(9.95, 10.05, STOPPING),  # sent just before, refused at the door: never accepted
        Sent(10.1, 10.1, STOPPING),
        Sent(10.2, 10.2, REFUSED),
        Sent(10.25, 10.25, RESET),
        Sent(10.3, 10.3, CLOSED),
        Sent(10.4, 23.0, "TimeoutError"),  # a hang
    ]
    run.exit_code, run.exit_s = 0, 1.25
    s = run.summary()
    assert (s["sent_before_signal"], s["refused_before_signal"], s["refused_max_lead_s"]) == (4, 1, 0.05)
    assert (s["accepted_before_signal"], s["answered_200"], s["failed_before_signal"]) == (3, 2, 1)
    assert (s["in_flight_at_signal"], s["in_flight_answered_200"]) == (2, 1)
    assert s["in_flight_last_answer_s"] == 0.4
    after = (
        "after_signal",
        "after_signal_503",
        "after_signal_refused",
        "after_signal_reset",
        "after_signal_closed",
    )
    assert tuple(s[k] for k in after) == (5, 1, 1, 1, 1)
    assert s["after_signal_other"] == {"TimeoutError": 1} and s["hangs"] == 1
    assert not s["all_accepted_answered"] and not s["after_signal_clean"]
    assert s["fits_shutdown_timeout"] and s["fits_cloud_run_10s"]
    assert "| 1 | 2 | 1 | 4 | 1 | 3 | 2 | 1 | 2 (1) | 0 | 1 | 1 | 1 | 1 |" in to_markdown([s])

    run.requests = [Sent(9.0, 10.5, "200"), Sent(9.0, 10.6, DROPPED)]  # accepted, then dropped unrun
    assert not run.summary()["all_accepted_answered"]
    run.requests = [Sent(9.0, 10.5, "200"), Sent(10.1, 10.1, STOPPING)]
    run.exit_s = 9.0
    s = run.summary()
    assert s["all_accepted_answered"] and s["after_signal_clean"]
    assert not s["fits_shutdown_timeout"] and s["fits_cloud_run_10s"]  # 9 s > 8 s budget, < Cloud Run's 10 s


@pytest.mark.parametrize(
    "bad", [["--clients", "0"], ["--load-seconds", "600"], ["--repeats", "11"], ["--env", "NOVALUE"]]
)
def test_out_of_bounds_options_are_refused(bad: list[str], tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(SystemExit) as info:
        main(["--bundle", str(tmp_path), *bad])
    assert info.value.code == 2


@pytest.mark.slow
def test_sigterm_under_load_answers_every_accepted_request(tiny_bundle: Path, tmp_path: Path) -> None:
    """A real server on the tiny bundle, 3 clients, SIGTERM after 1.5 s: all accepted answered, exit 0."""
    out = tmp_path / "shutdown"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    argv = ["--bundle", str(tiny_bundle), "--texts", str(REPO_ROOT / "data" / "sample" / "tickets.csv")]
    argv += ["--n-texts", "50", "--clients", "3", "--load-seconds", "1.5", "--output", str(out)]
    code = main(argv)
    report = json.loads((out / "results.json").read_text(encoding="utf-8"))
    (run,) = report["runs"]
    assert run["accepted_before_signal"] > 0
    assert run["answered_200"] == run["accepted_before_signal"] and run["all_accepted_answered"]
    assert run["refused_max_lead_s"] < 2.0  # only requests racing the signal are refused unrun
    assert run["exit_code"] == 0 and not run["killed"] and run["hangs"] == 0
    assert run["sigterm_to_exit_s"] is not None and run["fits_shutdown_timeout"]
    assert run["shutdown_timeout_s"] == report["shutdown_timeout_s"] == 8.0
    assert run["ready_after_signal"] != "200"  # not ready once stopping
    assert code == (0 if report["passed"] else 1)
    assert "| 1 | 3 | 1.5 |" in (out / "results.md").read_text(encoding="utf-8")
    assert "load average" in report["machine"]
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after <= before  # the server it started is gone


def test_a_server_that_refuses_its_bundle_ends_the_wait_at_once(tmp_path: Path) -> None:
    """A bundle the real server refuses (empty manifest): its exit is reported with its log, not a timeout."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    argv = ["--bundle", str(bundle), "--texts", str(REPO_ROOT / "data" / "sample" / "tickets.csv")]
    argv += ["--n-texts", "5", "--clients", "1", "--load-seconds", "0.2", "--ready-timeout", "120"]
    began = time.monotonic()
    with pytest.raises(SystemExit) as info:
        main([*argv, "--output", str(tmp_path / "out")])
    message = str(info.value.code)
    assert message.startswith("error: the server exited with ") and "before it was ready" in message
    assert "manifest" in message.lower()  # the end of the server's own log says why
    assert time.monotonic() - began < 60  # well inside --ready-timeout: the exit ended the wait
