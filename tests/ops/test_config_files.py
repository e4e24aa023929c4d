"""Every YAML and JSON file of the repository parses; the ops configs hold what the system expects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.tools import REPO_ROOT, repo_files


class _LenientLoader(yaml.SafeLoader):
    """SafeLoader that accepts mkdocs' ``!!python/name:`` tags (as plain strings) and nothing executable."""


def _tag_as_string(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> str:
    return f"{node.tag}"


_LenientLoader.add_multi_constructor("tag:yaml.org,2002:python/", _tag_as_string)
_LenientLoader.add_multi_constructor("!", _tag_as_string)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LenientLoader)


YAML_FILES = repo_files(".yaml", ".yml")
JSON_FILES = repo_files(".json")


def test_the_repository_has_config_files() -> None:
    names = {p.relative_to(REPO_ROOT).as_posix() for p in YAML_FILES}
    assert {".github/workflows/ci.yaml", "cloud/run/service.yaml", "cloud/cloudbuild/release.yaml"} <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_yaml_parses(path: Path) -> None:
    documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LenientLoader))
    assert documents, f"{path} is empty"


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_json_parses(path: Path) -> None:
    json.loads(path.read_text(encoding="utf-8"))


def test_cloud_build_substitutions_are_declared() -> None:
    """A ${_NAME} that is not declared makes Cloud Build reject the build; catch it here."""
    for path in (REPO_ROOT / "cloud" / "cloudbuild").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        declared = set(load_yaml(path)["substitutions"])
        used = set(re.findall(r"(?<!\$)\$\{(_[A-Z0-9_]+)\}", text))
        assert used <= declared, f"{path.name}: undeclared substitutions {sorted(used - declared)}"


def test_release_pipeline_order_and_rollback() -> None:
    build = load_yaml(REPO_ROOT / "cloud" / "cloudbuild" / "release.yaml")
    steps = {step["id"]: step for step in build["steps"]}
    assert list(steps) == [
        "fetch-bundle",
        "gate-image",
        "export-gate",
        "build",
        "push",
        "smoke-expected",
        "deploy",
    ]
    gate = steps["export-gate"]
    assert "--quantize" in gate["args"][-1]
    assert "python -m export.onnx" in gate["args"][-1]
    # The gate runs the code of the commit being released: an image built from this build's source.
    assert gate["name"] == "gate-image"
    assert "docker build --file=docker/train.Dockerfile --tag=gate-image ." in steps["gate-image"]["args"][-1]
    assert "train:latest" not in json.dumps(build)
    # The W&B key is read only on the W&B path, inside the gate: a bundle from GCS needs no secret at all.
    assert "availableSecrets" not in build and all("secretEnv" not in step for step in build["steps"])
    script = gate["args"][-1]
    assert script.index("manifest.json") < script.index("exit 0") < script.index("fetch_secret.py")
    assert "smoke.py expect --bundle /models/bundle" in steps["smoke-expected"]["args"][-1]
    deploy = steps["deploy"]
    assert deploy["args"] == ["cloud/deploy.sh"]
    assert "SMOKE_EXPECTED=/workspace/smoke-expected.json" in deploy["env"]


def test_cloud_run_service_probes_and_sizing() -> None:
    service = load_yaml(REPO_ROOT / "cloud" / "run" / "service.yaml")
    spec = service["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["startupProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert spec["containerConcurrency"] == 16
    assert service["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/minScale"] == "1"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODEL_DIR"] == "/models/bundle"  # where docker/server.Dockerfile puts the bundle
    assert "PORT" not in env  # Cloud Run sets it


def test_server_env_vars_in_cloud_run_exist_in_server_settings() -> None:
    settings = REPO_ROOT / "server" / "settings.py"
    if not settings.is_file():
        pytest.skip("server/settings.py not written yet")
    known = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', settings.read_text(encoding="utf-8")))
    service = load_yaml(REPO_ROOT / "cloud" / "run" / "service.yaml")
    names = {e["name"] for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert names <= known, f"unknown to server/settings.py: {sorted(names - known)}"


def test_alert_policies_cover_the_three_signals() -> None:
    policies = [load_yaml(p) for p in sorted((REPO_ROOT / "cloud" / "monitoring").glob("alert-*.yaml"))]
    queries = " ".join(
        c["conditionPrometheusQueryLanguage"]["query"] for p in policies for c in p["conditions"]
    )
    assert 'response_code_class="5xx"' in queries
    assert "histogram_quantile(0.95" in queries
    assert "container_instance_count" in queries
    assert all(p["notificationChannels"] == ["${NOTIFICATION_CHANNEL}"] for p in policies)


def test_prometheus_rules_use_metrics_the_server_exports() -> None:
    metrics_py = REPO_ROOT / "server" / "metrics.py"
    if not metrics_py.is_file():
        pytest.skip("server/metrics.py not written yet")
    source = metrics_py.read_text(encoding="utf-8")
    rules = load_yaml(REPO_ROOT / "cloud" / "prometheus" / "rules.yaml")
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    used = set(re.findall(r"\bticket_triage_[a-z_]+", exprs))
    for name in used:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        stem = base.removeprefix("ticket_triage_")
        assert stem in source, f"{name} is not exported by server/metrics.py"


def test_dependabot_covers_python_actions_and_docker() -> None:
    config = load_yaml(REPO_ROOT / ".github" / "dependabot.yml")
    assert {u["package-ecosystem"] for u in config["updates"]} == {"uv", "github-actions", "docker"}


def test_workflows_that_pull_data_check_the_bootstrap_first() -> None:
    """A hashless data.dvc makes `dvc pull` fetch nothing: the workflow must say so before it pulls."""
    for path in sorted((REPO_ROOT / ".github" / "workflows").glob("*.yaml")):
        steps = [s for job in load_yaml(path)["jobs"].values() for s in job.get("steps", [])]
        runs = [str(s.get("run", "")) for s in steps]
        pulls = [i for i, run in enumerate(runs) if "dvc pull data.dvc" in run]
        if pulls:
            checks = [i for i, run in enumerate(runs) if 'grep -q "md5:" data.dvc' in run]
            assert checks and checks[0] < pulls[0], f"{path.name}: no bootstrap check before dvc pull"
