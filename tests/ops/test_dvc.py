"""DVC for real (no stubs): data versioning round trip through a local remote, and the pipeline of dvc.yaml
run end to end on the embedded sample with the tiny model, in temporary copies of the repository (the real
working tree is never touched)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.ops.tools import REPO_ROOT, repo_files

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

# What the pipeline's stages read (dvc.yaml deps) plus the DVC metadata; nothing else is copied.
PIPELINE_PATHS = ("training/", "quality/", "bundle_contract/", "export/", "configs/", "data/sample/",
                  "dvc.yaml", "params.yaml", ".dvc/config", ".dvcignore", "data.dvc",
                  ".gitignore")  # fmt: skip
# The tiny model's values (configs/experiment/smoke.yaml, 1 epoch: every stage is a fresh process, and
# importing torch dominates); its quality floor is waived as in tests/fixtures/bundle.py.
SMOKE_PARAMS = {"experiment": "smoke", "trainer": {"lr": 5.0e-3, "max_epochs": 1, "batch_size": 8},
                "export": {"flags": "--quantize --allow-below-baseline --isa avx2 --threads 1"}}  # fmt: skip


def _env() -> dict[str, str]:
    """The test's interpreter first on PATH: the stages' `python -m ...` and `dvc` are this virtualenv's."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(
        GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.com", GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.com", OMP_NUM_THREADS="1", WANDB_MODE="disabled",
        DVC_NO_ANALYTICS="1", HYDRA_FULL_ERROR="1",
    )  # fmt: skip
    return env


def sh(cwd: Path, *command: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(command), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output}"
    return result


def dvc(cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return sh(cwd, sys.executable, "-m", "dvc", *args, timeout=timeout)


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sh(path, "git", "init", "-q", "-b", "main")
    return path


def commit(repo: Path, message: str) -> None:
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", message)


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def copy_pipeline(dest: Path) -> Path:
    """The files the pipeline needs, as they are in the working tree (tracked or new)."""
    for path in repo_files(""):
        rel = path.relative_to(REPO_ROOT).as_posix()
        if rel in PIPELINE_PATHS or rel.startswith(tuple(p for p in PIPELINE_PATHS if p.endswith("/"))):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return dest


def test_data_round_trip_through_a_remote(tmp_path: Path) -> None:
    """The bootstrap of docs/data.md on a local remote: fill data/raw, `dvc commit data.dvc`, prepare and
    `dvc add` the prepared dir, `dvc push`; a fresh clone gets identical files with `dvc pull`."""
    repo = git_repo(tmp_path / "repo")
    shutil.copy2(REPO_ROOT / "data.dvc", repo / "data.dvc")
    assert "md5" not in yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]  # not bootstrapped yet
    dvc(repo, "init", "-q")
    remote = tmp_path / "remote"
    dvc(repo, "remote", "add", "-d", "local", str(remote))
    raw = repo / "data" / "raw"
    raw.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "data" / "sample" / "tickets.csv", raw / "tickets.csv")
    (raw / "nested").mkdir()
    (raw / "nested" / "more.csv").write_text("subject,body,priority,language\nHi,Printer broken,low,en\n")
    dvc(repo, "commit", "-f", "data.dvc")
    tracked = yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]
    assert tracked["path"] == "data/raw" and tracked["md5"].endswith(".dir") and tracked["nfiles"] == 2

    processed = repo / "data" / "processed" / "sample"
    sh(repo, sys.executable, "-m", "training.data", "prepare", f"data.output_dir={processed}")
    assert (processed / "stats.json").is_file()
    dvc(repo, "add", "data/processed/sample")
    commit(repo, "data")
    dvc(repo, "push")

    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / "data" / "raw").exists()
    dvc(clone, "pull")
    assert digests(clone / "data" / "raw") == digests(raw)
    assert digests(clone / "data" / "processed" / "sample") == digests(processed)
    assert set(digests(processed)) == {"train.parquet", "val.parquet", "test.parquet", "stats.json"}


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding a copy of the pipeline, its params set to the tiny model, `dvc repro` run."""
    repo = git_repo(copy_pipeline(tmp_path_factory.mktemp("pipeline")))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in SMOKE_PARAMS.items():
        params[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit(repo, "pipeline")
    dvc(repo, "repro", timeout=600)
    return repo


def test_dvc_repro_runs_the_pipeline_on_the_sample(pipeline_repo: Path) -> None:
    repo = pipeline_repo
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert list(lock["stages"]) == ["prepare", "train", "export"]
    assert lock["stages"]["train"]["params"]["params.yaml"]["trainer"]["lr"] == 5.0e-3
    assert "experiment=smoke" in lock["stages"]["train"]["cmd"]
    assert (repo / "data" / "processed" / "sample" / "stats.json").is_file()
    manifest = json.loads((repo / "bundles" / "dvc" / "manifest.json").read_text())
    assert manifest["model_name"] == "tiny" and manifest["quantization"] is not None
    report = json.loads((repo / "outputs" / "dvc" / "train" / "metrics" / "report.json").read_text())
    assert 0.0 <= report["transformer"]["test"]["macro_f1"] <= 1.0
    metrics = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    assert "outputs/dvc/train/metrics/report.json" in json.dumps(metrics)
    # Nothing changed: nothing reruns.
    again = dvc(repo, "repro")
    assert "didn't change" in again.stdout and "Running stage" not in again.stdout


def test_dvc_exp_run_sets_a_param_and_reruns_only_what_depends_on_it(pipeline_repo: Path) -> None:
    repo = pipeline_repo
    commit(repo, "lock")
    result = dvc(repo, "exp", "run", "-S", "trainer.lr=0.002", timeout=600)
    assert "Running stage 'train'" in result.stdout and "Running stage 'export'" in result.stdout
    assert "Running stage 'prepare'" not in result.stdout  # its deps and params did not change
    diff = json.loads(dvc(repo, "params", "diff", "--json").stdout)
    lr = diff["params.yaml"]["trainer.lr"]
    assert (lr["old"], lr["new"]) == (5.0e-3, 0.002)
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    assert "0.002" in json.dumps(shown)
