"""cloud/ scripts run as scripts: template rendering, Vertex job submission (dry run), alert policies (dry
run), the Prometheus rules with promtool, the release checksum step. The canary: test_deploy_canary.py."""

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
    "REVISION": "ticket-triage-20261201-120000",
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


@pytest.mark.parametrize(
    ("kind", "args"),
    [("cpu", ["experiment=quick", "data=full"]), ("gpu", ["experiment=best"]),
     ("gpu-multinode", ["experiment=best"])],
)  # fmt: skip
def test_vertex_submit_defaults_fit_the_machine(kind: str, args: list[str]) -> None:
    """cpu runs a CPU experiment (experiment=best needs CUDA and the hub); GPU kinds the production one."""
    env = {**VARIABLES, "DRY_RUN": "1"}
    env.pop("TRAIN_ARGS")
    result = run([str(CLOUD / "vertex" / "submit.sh"), kind], env=env)
    assert result.returncode == 0, result.stderr
    spec = yaml.safe_load(result.stdout)
    for pool in spec["workerPoolSpecs"]:
        container = pool["containerSpec"]
        assert container["args"] == args
        assert ("train-cuda:" in container["imageUri"]) == (kind != "cpu")
        # the contract's data decision: prepared data stays on each node's own disk, never on the /gcs mount
        assert not any(a.startswith("data.output_dir=/gcs") for a in container["args"])
        assert all("/gcs/" not in e["value"] or e["name"] == "RUN_ROOT" for e in container["env"])


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
