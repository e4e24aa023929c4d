# syntax=docker/dockerfile:1.7
# GPU serving image (Cloud Run GPU, GKE with an NVIDIA node pool): the server group with onnxruntime-gpu on the
# CUDA 12 + cuDNN 9 runtime. Serve a `device: cuda` bundle (fp32 or fp16, `python -m export.gpu`); the server
# picks CUDAExecutionProvider (EXECUTION_PROVIDER=auto) and falls back to CPU with a warning when no GPU is seen.
#
#   docker build -f docker/server-gpu.Dockerfile --build-arg BUNDLE_DIR=bundles/<model_version>-cuda-fp16 \
#       -t ticket-triage-server-gpu .
#   docker run --rm --gpus all -p 8080:8080 ticket-triage-server-gpu
#
# onnxruntime-gpu replaces onnxruntime (both install the `onnxruntime` module), so it is pinned here rather than
# in uv.lock, where the CPU wheel of the server group lives.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# ---- build: a standalone CPython and the server group's pinned packages, then the GPU wheel of ORT ----
FROM ${CUDA_IMAGE} AS builder
ARG ORT_GPU_VERSION=1.22.0
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv python install 3.11 \
    && uv sync --frozen --python 3.11 --no-default-groups --group server --no-install-project \
    && uv pip uninstall --python /opt/venv/bin/python onnxruntime \
    && uv pip install --python /opt/venv/bin/python "onnxruntime-gpu==${ORT_GPU_VERSION}" \
    && find /opt/venv -depth -type d \( -name tests -o -name test \) -path '*/site-packages/*/*' -prune -exec rm -rf {} +

# ---- runtime: CUDA runtime libraries, the interpreter, the venv, the code; non-root ----
FROM ${CUDA_IMAGE} AS runtime
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    MODEL_DIR=/models/bundle \
    EXECUTION_PROVIDER=auto \
    BATCH_MAX_WAIT_MS=2
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=builder /opt/python /opt/python
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY bundle_contract/ ./bundle_contract/
COPY server/ ./server/
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=4)"]
CMD ["python", "-m", "server"]

# ---- bundled (default target): the runtime plus one verified GPU bundle ----
FROM runtime AS bundled
ARG BUNDLE_DIR=bundle
COPY ${BUNDLE_DIR}/ /models/bundle/
