# syntax=docker/dockerfile:1.7
# GPU training image (Vertex AI GPU custom jobs): CUDA runtime base, train + export groups, onnxruntime-gpu.
#
#   docker build -f docker/train-cuda.Dockerfile -t ticket-triage-train-cuda .
#   docker run --rm --gpus all -e DVC_PULL=0 ticket-triage-train-cuda experiment=smoke trainer.device=cuda
#
# torch (uv.lock: torch 2.15.0+cu132 from PyPI) brings its own CUDA 13 libraries as nvidia-* wheels; the base image
# adds the CUDA 12 / cuDNN 9 runtime that the onnxruntime-gpu wheel links against. Needs an NVIDIA driver >= 580
# on the host (Vertex AI's current GPU images have it).
#
# onnxruntime vs onnxruntime-gpu: both wheels install the same `onnxruntime` Python package directory. Installing
# one over the other leaves a mix of files, and uninstalling either later deletes files the other needs, so the
# locked CPU wheel is removed first and the GPU wheel installed with --no-deps (its dependencies are the CPU
# wheel's, already installed from uv.lock). PyPI's onnxruntime-gpu trails onnxruntime: uv.lock pins onnxruntime
# 1.32.0 while the newest onnxruntime-gpu is 1.31.1, hence ORT_GPU_VERSION below; set it to the locked version
# once PyPI has it. The export gate's int8 model runs on the CPU execution provider, which onnxruntime-gpu has too.
ARG CUDA_IMAGE=nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${CUDA_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ARG ORT_GPU_VERSION=1.31.1
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
# A uv-managed CPython 3.11 (the version CI and the CPU image use), installed under /opt/python and copied below.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv python install 3.11 \
    && uv sync --frozen --python 3.11 --no-default-groups --group train --group export --no-install-project \
    && uv pip uninstall --python /opt/venv/bin/python onnxruntime \
    && uv pip install --python /opt/venv/bin/python --no-deps "onnxruntime-gpu==${ORT_GPU_VERSION}" \
    && /opt/venv/bin/python -c "import onnxruntime as ort; p = ort.get_available_providers(); assert 'CUDAExecutionProvider' in p, p"

FROM ${CUDA_IMAGE} AS runtime
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HYDRA_FULL_ERROR=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /bin/bash app \
    && install -d -o app -g app /app
COPY --from=builder /opt/python /opt/python
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
# Arguments are Hydra overrides for training.run, e.g. `experiment=best`.
ENTRYPOINT ["/app/docker/train-entrypoint.sh"]
