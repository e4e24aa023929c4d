# syntax=docker/dockerfile:1.7
# CPU training image (Vertex AI CPU custom jobs, the release gate, local runs): train + export groups from uv.lock,
# with the CPU build of torch.
#
#   docker build -f docker/train.Dockerfile -t ticket-triage-train .
#   docker run --rm -e DVC_PULL=0 ticket-triage-train experiment=smoke
#
# torch: uv.lock pins torch from PyPI, whose Linux wheel is the CUDA build (~3 GB with its nvidia-* wheels, useless
# without a GPU). This image installs every locked package at its locked version EXCEPT torch, triton and
# nvidia-*, then the same torch version from the PyTorch CPU wheel index (~200 MB). --no-deps everywhere: the
# exported list already holds every dependency, so nothing unlocked can come in.
#
# The entrypoint pulls the DVC-tracked data, runs `python -m training.run "$@"`, exports the best checkpoint
# through the export gate and copies the run directory and the bundle to OUTPUT_GCS_URI (see docker/train-entrypoint.sh).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN --mount=type=cache,target=/root/.cache/uv \
    uv export --frozen --no-default-groups --group train --group export --no-emit-project --no-hashes \
        --no-annotate --no-header --output-file /tmp/locked.txt \
    && torch_version="$(sed -n 's/^torch==\([^ ;]*\).*/\1/p' /tmp/locked.txt)" \
    && test -n "${torch_version}" \
    && grep -vE '^(torch|triton|nvidia-[a-z0-9-]+)==' /tmp/locked.txt > /tmp/cpu.txt \
    && uv venv /opt/venv \
    && uv pip install --python /opt/venv/bin/python --no-deps -r /tmp/cpu.txt \
    && uv pip install --python /opt/venv/bin/python --no-deps --index-url "${TORCH_INDEX}" \
        "torch==${torch_version%%+*}+cpu" \
    && /opt/venv/bin/python -c "import torch; assert not torch.version.cuda, torch.version.cuda"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=4 \
    HYDRA_FULL_ERROR=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /bin/bash app \
    && install -d -o app -g app /app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app configs/ ./configs/
COPY --chown=app:app training/ ./training/
COPY --chown=app:app export/ ./export/
COPY --chown=app:app bundle_contract/ ./bundle_contract/
COPY --chown=app:app quality/ ./quality/
COPY --chown=app:app data/sample/ ./data/sample/
COPY --chown=app:app .dvc/config ./.dvc/config
COPY --chown=app:app data.dvc dvc.yaml ./
COPY --chown=app:app docker/train-entrypoint.sh docker/gcs_sync.py docker/fetch_secret.py ./docker/
USER 10001:10001
# Arguments are Hydra overrides for training.run, e.g. `experiment=best trainer.max_epochs=5`.
ENTRYPOINT ["/app/docker/train-entrypoint.sh"]
