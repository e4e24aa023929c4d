"""``python -m server``: validate the env and the bundle, then serve with uvicorn until SIGTERM.

Exit codes: 0 after a graceful shutdown (SIGTERM/SIGINT: stop accepting, finish in-flight requests),
2 for invalid configuration or an invalid bundle (one line on stderr, no traceback), 1 when the model fails
to load or the micro-batcher dies (so the platform restarts the instance), 3 when uvicorn cannot start
(e.g. the port is taken).

Shutdown: SHUTDOWN_TIMEOUT_S is one budget from the signal on, for uvicorn's drain of open requests, the
batcher and the prediction-log flush together (0: stop at once).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from types import FrameType

import uvicorn

from server.app import create_app
from server.bundle import BundleError, load_bundle
from server.runtime import Runtime
from server.settings import Settings, SettingsError

logger = logging.getLogger("server")


class _JsonFormatter(logging.Formatter):
    """One JSON object per line (Cloud Logging reads `severity` and `message`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _Server(uvicorn.Server):
    """uvicorn, telling the runtime when the shutdown signal arrives (not ready from then on; the shutdown
    budget starts then, not after uvicorn's drain)."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.runtime.begin_shutdown()
        super().handle_exit(sig, frame)


def drain_budget_s(shutdown_timeout_s: float) -> float:
    """uvicorn's share of the shutdown budget: all but a reserve for the batcher and the log flush."""
    return max(0.0, shutdown_timeout_s - min(1.0, 0.1 * shutdown_timeout_s))


def _fail(message: str) -> int:
    sys.stderr.write(f"server: {message}\n")
    return 2


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        return _fail(f"invalid configuration: {exc}")
    configure_logging(settings.log_level, settings.log_format)
    try:
        bundle = load_bundle(settings.model_dir)
    except BundleError as exc:
        return _fail(f"cannot serve MODEL_DIR={settings.model_dir}: {exc}")

    fatal: list[str] = []
    server: uvicorn.Server | None = None

    def on_fatal(message: str) -> None:
        fatal.append(message)
        if server is not None:
            server.should_exit = True

    app = create_app(settings, bundle=bundle, on_fatal=on_fatal)
    runtime: Runtime = app.state.runtime
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,  # logging is configured above, once
        access_log=False,  # REQUEST_LOG=true gives one line per request with its request id instead
        server_header=False,
        # a float works (asyncio.wait_for); 0 cancels open requests at once instead of waiting forever
        timeout_graceful_shutdown=drain_budget_s(settings.shutdown_timeout_s),  # type: ignore[arg-type]
    )
    server = _Server(config, runtime)

    # uvicorn re-raises the captured signal after its graceful shutdown; with the default handlers that
    # would kill the process (exit 143) after a clean drain. These handlers make the re-raise a no-op.
    def _after_shutdown(signum: int, frame: FrameType | None) -> None:
        logger.debug("signal %d handled after graceful shutdown", signum)

    signal.signal(signal.SIGTERM, _after_shutdown)
    signal.signal(signal.SIGINT, _after_shutdown)

    logger.info("serving %s on http://%s:%d", settings.model_dir, settings.host, settings.port)
    server.run()
    if fatal:
        what = "the model could not be served" if runtime.model_version else "the model could not be loaded"
        sys.stderr.write(f"server: {what}: {fatal[0]}\n")
        return 1
    if not server.started:
        return 1
    logger.info("shut down cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
