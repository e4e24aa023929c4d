# syntax=docker/dockerfile:1.7
# Serving image: Litestar + ONNX Runtime, the `server` dependency group only (no torch, no transformers).
#
#   docker build -f docker/server.Dockerfile --build-arg BUNDLE_DIR=bundles/<model_version> -t ticket-triage-server .
#   docker run --rm -p 8080:8080 ticket-triage-server
#
# Without a bundle baked in (mount one at run time instead):
#   docker build -f docker/server.Dockerfile --target runtime -t ticket-triage-server:nobundle .
#   docker run --rm -p 8080:8080 -v "$PWD/bundles/<model_version>:/models/bundle:ro" ticket-triage-server:nobundle
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# ---- build: resolve nothing, install exactly what uv.lock pins for the server group ----
FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-default-groups --group server --no-install-project \
    && find /opt/venv -depth -type d \( -name tests -o -name test \) -path '*/site-packages/*/*' -prune -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3.11/site-packages/pip*

# ---- runtime: the venv, the server package, a non-root user; no uv, no compilers, no caches ----
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    MODEL_DIR=/models/bundle
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY bundle_contract/ ./bundle_contract/
COPY server/ ./server/
USER 10001:10001
EXPOSE 8080
# Liveness for plain Docker; Cloud Run uses its own probes (cloud/run/service.yaml). No curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=4)"]
# Exec form: python is PID 1 and receives SIGTERM for the graceful shutdown.
CMD ["python", "-m", "server"]

# ---- bundled (default target): the runtime plus one verified export bundle ----
FROM runtime AS bundled
ARG BUNDLE_DIR=bundle
COPY ${BUNDLE_DIR}/ /models/bundle/
