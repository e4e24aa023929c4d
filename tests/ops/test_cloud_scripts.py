"""cloud/ scripts run as scripts: template rendering, deploy + smoke test + rollback (stub gcloud and curl),
Vertex job submission (dry run), alert policies (dry run), and the Prometheus rules with promtool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.ops.tools import REPO_ROOT, require_tool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="bash scripts")

CLOUD = REPO_ROOT / "cloud"
VARIABLES = {
    "PROJECT_ID": "my-project",
    "REGION": "europe-west4",
    "REPO": "ticket-triage",
    "BUCKET": "my-bucket",
    "SERVICE": "ticket-triage",
    "IMAGE": "europe-west4-docker.pkg.dev/my-project/ticket-triage/server:abc123",
    "RUN_SERVICE_ACCOUNT": "ticket-triage-run@my-project.iam.gserviceaccount.com",
    "TRAIN_SERVICE_ACCOUNT": "ticket-triage-train@my-project.iam.gserviceaccount.com",
    "NOTIFICATION_CHANNEL": "projects/my-project/notificationChannels/42",
    "IMAGE_TAG": "latest",
    "TRAIN_ARGS": '["experiment=best"]',
}


def run(
    command: list[str], env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    return subprocess.run(
        command, env=full_env, capture_output=True, text=True, timeout=120, check=False, **kwargs
    )  # type: ignore[call-overload]


TEMPLATES = [
    *sorted((CLOUD / "vertex").glob("*.yaml")),
    CLOUD / "run" / "service.yaml",
    *sorted((CLOUD / "monitoring").glob("alert-*.yaml")),
]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_template_renders_to_valid_yaml_with_the_documented_variables(template: Path) -> None:
    result = run([str(CLOUD / "render.sh"), str(template)], env=VARIABLES)
    assert result.returncode == 0, result.stderr
    assert "${" not in result.stdout
    assert yaml.safe_load(result.stdout)
    readme = (CLOUD / "README.md").read_text(encoding="utf-8")
    for name in set(VARIABLES) & set(template.read_text().replace("{", " ").replace("}", " ").split()):
        assert f"`{name}`" in readme, (
            f"{name} is used by {template.name} but not documented in cloud/README.md"
        )


def test_render_names_the_missing_variables_and_keeps_values_literal(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text("a: ${FOO}\nb: ${BAR}\nc: $HOME ${lower}\n")
    missing = run([str(CLOUD / "render.sh"), str(template)], env={"FOO": "x"})
    assert missing.returncode == 65
    assert "BAR" in missing.stderr and "FOO" not in missing.stderr.split("variables set:")[1]
    ok = run([str(CLOUD / "render.sh"), str(template)], env={"FOO": "a&b\\1", "BAR": "p/q"})
    assert ok.stdout == "a: a&b\\1\nb: p/q\nc: $HOME ${lower}\n"


def test_vertex_submit_renders_overrides_as_container_args(tmp_path: Path) -> None:
    env = {**VARIABLES, "DRY_RUN": "1"}
    env.pop("TRAIN_ARGS")
    result = run(
        [str(CLOUD / "vertex" / "submit.sh"), "gpu", "experiment=best", 'trainer.note="a b"'], env=env
    )
    assert result.returncode == 0, result.stderr
    spec = yaml.safe_load(result.stdout)
    pool = spec["workerPoolSpecs"][0]
    assert pool["containerSpec"]["args"] == ["experiment=best", 'trainer.note="a b"']
    assert (
        pool["containerSpec"]["imageUri"]
        == "europe-west4-docker.pkg.dev/my-project/ticket-triage/train-cuda:latest"
    )
    assert pool["machineSpec"]["acceleratorCount"] == 1
    env_vars = {e["name"]: e["value"] for e in pool["containerSpec"]["env"]}
    assert env_vars["OUTPUT_GCS_URI"] == "gs://my-bucket/train"
    assert env_vars["WANDB_API_KEY_SECRET"].startswith("projects/my-project/secrets/")
    bad = run([str(CLOUD / "vertex" / "submit.sh"), "tpu"], env=env)
    assert bad.returncode == 64


def test_alert_policies_dry_run() -> None:
    result = run([str(CLOUD / "monitoring" / "apply.sh")], env={**VARIABLES, "DRY_RUN": "1"})
    assert result.returncode == 0, result.stderr
    policies = list(
        yaml.safe_load_all(result.stdout.replace("\ndisplayName: ticket", "\n---\ndisplayName: ticket"))
    )
    assert len(policies) == 3


def test_prometheus_rules_check_and_unit_tests() -> None:
    promtool = require_tool("promtool", "apt-get install prometheus (Debian) ships promtool")
    rules = CLOUD / "prometheus"
    check = run([promtool, "check", "rules", "rules.yaml"], cwd=rules)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = run([promtool, "test", "rules", "rules.test.yaml"], cwd=rules)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "SUCCESS" in tests.stdout


STUB_GCLOUD = """#!/usr/bin/env bash
echo "gcloud $*" >> "$CALLS"
case "$*" in
    "run services describe"*latestReadyRevisionName*)
        if [[ -f "$STATE/deployed" ]]; then echo "ticket-triage-00002-new"
        else echo "${PREVIOUS_REVISION:-}"; fi ;;
    "run services describe"*status.url*) echo "http://127.0.0.1:9/fake" ;;
    "run services replace"*)
        cp "${@: -2:1}" "$STATE/applied.yaml"
        [[ "${REPLACE_EXIT:-0}" == 0 ]] && touch "$STATE/deployed"
        exit "${REPLACE_EXIT:-0}" ;;
    "run services update-traffic"*) ;;
    "auth print-identity-token"*) echo "token-123" ;;
esac
"""

STUB_CURL = """#!/usr/bin/env bash
echo "curl $*" >> "$CALLS"
for arg in "$@"; do
    case "$arg" in
        */ready) exit "${READY_EXIT:-0}" ;;
        */predict) [[ "${PREDICT_EXIT:-0}" == 0 ]] || exit 22
                   echo "${PREDICT_BODY:-{\\"label\\": \\"high\\", \\"model_version\\": \\"v1\\"}}"; exit 0 ;;
    esac
done
"""


@pytest.fixture
def stubs(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("gcloud", STUB_GCLOUD), ("curl", STUB_CURL)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    return {
        **VARIABLES,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls.log"),
        "STATE": str(state),
        "SMOKE_RETRIES": "2",
        "SMOKE_DELAY_S": "0",
    }


def deploy(env: dict[str, str], **extra: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    result = run([str(CLOUD / "deploy.sh")], env={**env, **extra})
    calls = Path(env["CALLS"]).read_text().splitlines()
    return result, calls


def test_deploy_success_smoke_tests_with_a_token_and_keeps_the_new_revision(stubs: dict[str, str]) -> None:
    result, calls = deploy(stubs, PREVIOUS_REVISION="ticket-triage-00001-old")
    assert result.returncode == 0, result.stderr
    applied = yaml.safe_load((Path(stubs["STATE"]) / "applied.yaml").read_text())
    assert applied["spec"]["template"]["spec"]["containers"][0]["image"] == VARIABLES["IMAGE"]
    assert any("/ready" in c and "Authorization: Bearer token-123" in c for c in calls)
    assert any(c.endswith("http://127.0.0.1:9/fake/predict") for c in calls)
    assert not any("update-traffic" in c for c in calls)
    assert "smoke test passed" in result.stderr


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ({"READY_EXIT": "7"}, "/ready did not answer 200"),
        ({"PREDICT_EXIT": "1"}, "POST /predict failed"),
        ({"PREDICT_BODY": '{"detail": "oops"}'}, "without label/model_version"),
    ],
)
def test_failed_smoke_test_rolls_traffic_back(
    stubs: dict[str, str], failure: dict[str, str], reason: str
) -> None:
    result, calls = deploy(stubs, PREVIOUS_REVISION="ticket-triage-00001-old", **failure)
    assert result.returncode == 1
    assert reason in result.stderr
    rollback = [c for c in calls if "update-traffic" in c]
    assert rollback == [
        "gcloud run services update-traffic ticket-triage --region=europe-west4 "
        "--to-revisions=ticket-triage-00001-old=100"
    ]


def test_failed_deploy_on_first_release_says_there_is_nothing_to_roll_back(stubs: dict[str, str]) -> None:
    result, calls = deploy(stubs, REPLACE_EXIT="1")
    assert result.returncode == 1
    assert "first deploy" in result.stderr
    assert not any("update-traffic" in c for c in calls)


def test_deploy_requires_its_variables(stubs: dict[str, str]) -> None:
    env = dict(stubs)
    env.pop("IMAGE")
    result = run([str(CLOUD / "deploy.sh")], env=env)
    assert result.returncode != 0
    assert "IMAGE" in result.stderr


def _release_checksum_script() -> str:
    build = yaml.safe_load((CLOUD / "cloudbuild" / "release.yaml").read_text())
    script = next(s for s in build["steps"] if s["id"] == "export-gate")["args"][-1]
    return script.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]


@pytest.mark.slow
def test_release_pipeline_checksum_step_accepts_a_bundle_and_refuses_a_changed_one(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    import shutil

    script = _release_checksum_script()
    ok = subprocess.run(
        [sys.executable, "-", str(tiny_bundle)],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("bundle verified:")
    changed = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, changed)
    (changed / "tokenizer.json").write_text("{}")
    bad = subprocess.run(
        [sys.executable, "-", str(changed)],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode != 0
    assert "tokenizer.json: sha256" in bad.stderr
