"""cloud/deploy.sh as a canary, against a recording `gcloud` stub that keeps a Cloud Run service's revisions
and traffic in a JSON file, and a REAL server on 127.0.0.1 (the tiny bundle) behind the candidate and service
URLs.
The smoke test's expected labels come from `cloud/smoke.py expect` on the same bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops.tools import REPO_ROOT
from tests.server_process import ServerProcess, free_port

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="bash scripts")]

CLOUD = REPO_ROOT / "cloud"
OLD = "ticket-triage-00001-old"
NEW = "ticket-triage-r2"

# The Cloud Run service as the stub sees it: {"revisions": [...], "traffic": [{revisionName, percent, tag}]}.
# Tagged targets answer at CANDIDATE_URL, the service at SERVICE_URL.
STUB_GCLOUD = r"""
import json, os, sys
from pathlib import Path

import yaml

args = sys.argv[1:]
with open(os.environ["CALLS"], "a") as calls:
    calls.write("gcloud " + " ".join(args) + "\n")
state_path = Path(os.environ["STATE"])
state = json.loads(state_path.read_text()) if state_path.exists() else None
command = " ".join(a for a in args if not a.startswith("-"))

def save():
    state_path.write_text(json.dumps(state))

if command.startswith("auth print-identity-token"):
    print("token-123")
elif command.startswith("run services describe"):
    if state is None:
        sys.exit(1)
    traffic = [dict(t, url=os.environ["CANDIDATE_URL"]) if t.get("tag") else t for t in state["traffic"]]
    print(json.dumps({"status": {"url": os.environ["SERVICE_URL"], "traffic": traffic}}))
elif command.startswith("run services replace"):
    if os.environ.get("REPLACE_EXIT", "0") != "0":
        sys.exit(int(os.environ["REPLACE_EXIT"]))
    spec = yaml.safe_load(Path(args[3]).read_text())
    revision = spec["spec"]["template"]["metadata"]["name"]
    state = state or {"revisions": [], "traffic": []}
    state["revisions"].append(revision)
    state["image"] = spec["spec"]["template"]["spec"]["containers"][0]["image"]
    state["traffic"] = [
        {"revisionName": revision if t.get("latestRevision") else t["revisionName"],
         "percent": t.get("percent", 0), **({"tag": t["tag"]} if "tag" in t else {})}
        for t in spec["spec"]["traffic"]
    ]
    save()
elif command.startswith("run services update-traffic"):
    to = next(a for a in args if a.startswith("--to-revisions=")).split("=", 1)[1]
    pairs = dict(p.split("=") for p in to.split(","))
    assigned = {rev: int(pct) for rev, pct in pairs.items()}
    rest = 100 - sum(assigned.values())
    others = [t for t in state["traffic"] if t["revisionName"] not in assigned and t["percent"]]
    total = sum(t["percent"] for t in others) or 1
    traffic = [{"revisionName": r, "percent": p} for r, p in assigned.items()]
    traffic += [{"revisionName": t["revisionName"], "percent": rest * t["percent"] // total} for t in others]
    traffic += [t for t in state["traffic"] if t.get("tag")]
    state["traffic"] = [t for t in traffic if t["percent"] or t.get("tag")]
    save()
else:
    sys.exit(f"stub gcloud: unexpected call {args}")
"""


@pytest.fixture(scope="module")
def server(tiny_bundle: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tiny_bundle) as proc:
        proc.wait_ready()
        yield proc


@pytest.fixture(scope="module")
def expected(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = subprocess.run(
        [sys.executable, str(CLOUD / "smoke.py"), "expect", "--bundle", str(tiny_bundle)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("smoke") / "expected.json"
    path.write_text(result.stdout)
    return path


@pytest.fixture
def env(tmp_path: Path, server: ServerProcess, expected: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "stub_gcloud.py").write_text(STUB_GCLOUD)
    (bin_dir / "gcloud").write_text(
        f'#!/usr/bin/env bash\nexec "{sys.executable}" "{bin_dir}/stub_gcloud.py" "$@"\n'
    )
    (bin_dir / "gcloud").chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHON": sys.executable,
        "SERVICE": "ticket-triage",
        "REGION": "europe-west4",
        "IMAGE": "europe-west4-docker.pkg.dev/p/ticket-triage/server:v2",
        "RUN_SERVICE_ACCOUNT": "run@p.iam.gserviceaccount.com",
        "REVISION": NEW,
        "SMOKE_EXPECTED": str(expected),
        "SMOKE_RETRIES": "2",
        "SMOKE_DELAY_S": "0",
        "CALLS": str(tmp_path / "calls.log"),
        "STATE": str(tmp_path / "service.json"),
        "SERVICE_URL": server.base_url,
        "CANDIDATE_URL": server.base_url,
    }


def serving(env: dict[str, str], revisions: dict[str, int]) -> None:
    traffic = [{"revisionName": r, "percent": p} for r, p in revisions.items()]
    Path(env["STATE"]).write_text(json.dumps({"revisions": list(revisions), "traffic": traffic}))


def deploy(env: dict[str, str], **extra: str) -> tuple[subprocess.CompletedProcess[str], list[str], Any]:
    result = subprocess.run(
        [str(CLOUD / "deploy.sh")],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    calls = [c for c in Path(env["CALLS"]).read_text().splitlines() if "print-identity-token" not in c]
    state = json.loads(Path(env["STATE"]).read_text()) if Path(env["STATE"]).exists() else None
    return result, calls, state


def traffic_of(state: Any) -> dict[str, int]:
    return {t["revisionName"]: t["percent"] for t in state["traffic"] if t["percent"]}


def verbs(calls: list[str]) -> list[str]:
    return [" ".join(c.split()[1:4]) for c in calls]


def test_canary_order_candidate_first_then_10_then_100(env: dict[str, str]) -> None:
    serving(env, {OLD: 100})
    result, calls, state = deploy(env)
    assert result.returncode == 0, result.stderr
    assert verbs(calls) == [
        "run services describe",  # record the traffic
        "run services replace",  # the candidate, 0%
        "run services describe",  # its tagged URL (then the smoke test)
        "run services describe",  # the service URL
        "run services update-traffic",  # 10% (then the smoke test)
        "run services update-traffic",  # 100% (then the smoke test)
    ]
    assert calls[4].endswith(f"--to-revisions={NEW}=10") and calls[5].endswith(f"--to-revisions={NEW}=100")
    assert traffic_of(state) == {NEW: 100}
    assert state["image"] == env["IMAGE"]
    assert "tickets answered as offline" in result.stderr and "released" in result.stderr


def test_the_candidate_is_deployed_with_no_traffic_under_the_tag(env: dict[str, str], tmp_path: Path) -> None:
    """What `replace` applied (the smoke test fails, so nothing moves after it): the traffic as it was, plus
    the new revision at 0% under the tag."""
    serving(env, {OLD: 90, "ticket-triage-00000-older": 10})
    _, _, state = deploy(env, SMOKE_EXPECTED=str(_wrong_labels(Path(env["SMOKE_EXPECTED"]), tmp_path)))
    assert {"revisionName": NEW, "percent": 0, "tag": "candidate"} in state["traffic"]
    assert traffic_of(state) == {OLD: 90, "ticket-triage-00000-older": 10}


def test_a_failed_replace_changes_nothing(env: dict[str, str]) -> None:
    serving(env, {OLD: 100})
    result, calls, state = deploy(env, REPLACE_EXIT="3")
    assert result.returncode == 1
    assert "gcloud run services replace failed" in result.stderr
    assert not any("update-traffic" in c for c in calls)
    assert traffic_of(state) == {OLD: 100}


def _wrong_labels(expected: Path, tmp_path: Path) -> Path:
    data = json.loads(expected.read_text())
    for case in data["cases"]:
        case["label"] = "not-a-label"
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(data))
    return path


def test_a_failing_smoke_of_the_candidate_leaves_traffic_where_it_was(
    env: dict[str, str], tmp_path: Path
) -> None:
    serving(env, {OLD: 100})
    result, calls, state = deploy(
        env, SMOKE_EXPECTED=str(_wrong_labels(Path(env["SMOKE_EXPECTED"]), tmp_path))
    )
    assert result.returncode == 1
    assert "the bundle says 'not-a-label' offline" in result.stderr
    assert "traffic never moved" in result.stderr
    assert not any("update-traffic" in c for c in calls)
    assert traffic_of(state) == {OLD: 100}


def test_an_unreachable_candidate_leaves_traffic_where_it_was(env: dict[str, str]) -> None:
    serving(env, {OLD: 100})
    result, calls, state = deploy(env, CANDIDATE_URL=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "/ready did not answer 200 after 2 tries" in result.stderr
    assert not any("update-traffic" in c for c in calls)
    assert traffic_of(state) == {OLD: 100}


def test_a_failure_after_the_canary_shift_rolls_traffic_back(env: dict[str, str]) -> None:
    serving(env, {OLD: 100})
    # the candidate URL is healthy, the service URL (what 10% of real traffic reaches) is not
    result, calls, state = deploy(env, SERVICE_URL=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    shifts = [c for c in calls if "update-traffic" in c]
    assert shifts[0].endswith(f"--to-revisions={NEW}=10")
    assert shifts[-1].endswith(f"--to-revisions={OLD}=100")  # the rollback, to the recorded traffic
    assert len(shifts) == 2
    assert traffic_of(state) == {OLD: 100}
    assert "rolling back" in result.stderr


def test_first_deploy_takes_all_traffic_and_smoke_tests_the_service(env: dict[str, str]) -> None:
    result, calls, state = deploy(env)
    assert result.returncode == 0, result.stderr
    assert verbs(calls) == ["run services describe", "run services replace", "run services describe"]
    assert traffic_of(state) == {NEW: 100}
    failed, _, _ = deploy(env | {"STATE": env["STATE"] + ".2"}, SERVICE_URL=f"http://127.0.0.1:{free_port()}")
    assert failed.returncode == 1
    assert "no earlier revision to fall back to" in failed.stderr


def test_deploy_requires_its_variables(env: dict[str, str]) -> None:
    for name in ("IMAGE", "SMOKE_EXPECTED"):
        result = subprocess.run(
            [str(CLOUD / "deploy.sh")], env={k: v for k, v in env.items() if k != name},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode != 0
        assert name in result.stderr
    bad = subprocess.run(
        [str(CLOUD / "deploy.sh")], env={**env, "CANARY_PERCENT": "100"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 64
