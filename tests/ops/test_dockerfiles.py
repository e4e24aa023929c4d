"""What the images must be, read from the Dockerfiles (no Docker engine runs here; see also test_linters)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.ops.tools import REPO_ROOT

DOCKER = REPO_ROOT / "docker"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            result[current] = []
        elif current:
            result[current].append((keyword, rest))
    return result


def test_server_image_installs_only_the_server_group_from_the_lock() -> None:
    text = (DOCKER / "server.Dockerfile").read_text(encoding="utf-8")
    assert "uv sync --frozen --no-default-groups --group server --no-install-project" in text
    for forbidden in ("--group train", "--group export", "--group dev", "pip install"):
        assert forbidden not in text


def test_server_runtime_stage_is_slim_non_root_with_healthcheck() -> None:
    runtime = stages(DOCKER / "server.Dockerfile")["runtime"]
    keywords = [k for k, _ in runtime]
    user = next(rest for k, rest in runtime if k == "USER")
    assert user.split(":")[0] not in {"root", "0"}
    healthcheck = next(rest for k, rest in runtime if k == "HEALTHCHECK")
    assert "/health" in healthcheck and "urllib.request" in healthcheck and "PORT" in healthcheck
    assert "curl" not in healthcheck
    # No build tools or uv in the final image: nothing installed with apt, uv only in the builder.
    assert "RUN" in keywords
    assert not any("apt-get" in rest or "/uv" in rest for k, rest in runtime)
    cmd = next(rest for k, rest in runtime if k == "CMD")
    assert cmd == '["python", "-m", "server"]'  # exec form: SIGTERM reaches the server


def test_bundle_is_copied_where_the_server_looks() -> None:
    all_stages = stages(DOCKER / "server.Dockerfile")
    env = " ".join(rest for k, rest in all_stages["runtime"] if k == "ENV")
    assert "MODEL_DIR=/models/bundle" in env
    copy = next(rest for k, rest in all_stages["bundled"] if k == "COPY")
    assert copy == "${BUNDLE_DIR}/ /models/bundle/"
    assert list(all_stages)[-1] == "bundled"  # the default target carries a bundle


@pytest.mark.parametrize("name", ["train.Dockerfile", "train-cuda.Dockerfile"])
def test_train_images_use_the_entrypoint(name: str) -> None:
    final = list(stages(DOCKER / name).values())[-1]
    entrypoint = next(rest for k, rest in final if k == "ENTRYPOINT")
    assert entrypoint == '["/app/docker/train-entrypoint.sh"]'
    copied = " ".join(rest for k, rest in final if k == "COPY")
    for helper in ("train-entrypoint.sh", "gcs_sync.py", "fetch_secret.py"):
        assert f"docker/{helper}" in copied


def test_cuda_image_swaps_onnxruntime_for_the_gpu_build() -> None:
    text = (DOCKER / "train-cuda.Dockerfile").read_text(encoding="utf-8")
    uninstall = text.index("uv pip uninstall --python /opt/venv/bin/python onnxruntime")
    install = text.index('--no-deps "onnxruntime-gpu==${ORT_GPU_VERSION}"')
    assert uninstall < install
    assert "CUDAExecutionProvider" in text


def _dockerignore_allows(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; this file uses `**` plus `!dir/` allow entries."""
    allowed = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        if body == "**" or path == body.rstrip("/") or path.startswith(body.rstrip("/") + "/"):
            allowed = negate
    return allowed


def test_every_copied_path_exists_and_passes_dockerignore() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    patterns = [p for p in patterns if not p.startswith("**/")]  # cache/tmp excludes below allowed dirs
    for dockerfile in sorted(DOCKER.glob("*Dockerfile")):
        for keyword, rest in instructions(dockerfile):
            if keyword != "COPY" or "--from=" in rest:
                continue
            sources = [s for s in rest.split()[:-1] if not s.startswith("--")]
            for source in sources:
                if "${" in source:
                    continue  # the bundle build arg
                assert _dockerignore_allows(source.rstrip("/"), patterns), (
                    f"{dockerfile.name}: {source} ignored"
                )
                exists = (REPO_ROOT / source).exists()
                if source in {"data.dvc", "dvc.yaml", ".dvc/config"} and not exists:
                    pytest.skip(f"{source} is not in the repository yet (data stage)")
                assert exists, f"{dockerfile.name} copies {source}, which does not exist"


def test_cpu_training_image_takes_torch_from_the_cpu_wheel_index() -> None:
    """Locked versions, but torch from the PyTorch CPU index (PyPI's Linux torch is the ~3 GB CUDA build)."""
    steps = stages(DOCKER / "train.Dockerfile")["builder"]
    builder = " ".join(rest for k, rest in steps if k in {"RUN", "ARG"})
    assert "TORCH_INDEX=https://download.pytorch.org/whl/cpu" in builder
    assert "uv export --frozen --no-default-groups --group train --group export" in builder
    assert "grep -vE '^(torch|triton|nvidia-[a-z0-9-]+)=='" in builder
    assert '--index-url "${TORCH_INDEX}"' in builder and "+cpu" in builder
    assert "uv sync" not in builder  # a sync would install the CUDA wheel from the lock


def test_training_dockerfiles_document_real_config_keys() -> None:
    """Every trainer.<key>= in the Dockerfiles' comments exists in configs/trainer/cpu.yaml."""
    keys = set(re.findall(r"^([a-z_]+):", (REPO_ROOT / "configs/trainer/cpu.yaml").read_text(), re.M))
    for name in ("train.Dockerfile", "train-cuda.Dockerfile"):
        used = set(re.findall(r"trainer\.([a-z_]+)=", (DOCKER / name).read_text(encoding="utf-8")))
        assert used <= keys, f"{name} documents unknown trainer keys {sorted(used - keys)}"
