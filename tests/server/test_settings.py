"""Settings come from env vars only and are validated once, with messages that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings, SettingsError


def test_defaults_need_only_model_dir() -> None:
    settings = Settings.from_env({"MODEL_DIR": "bundles/x"})
    assert settings.model_dir == Path("bundles/x")
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.ort_intra_op_threads == 1
    assert settings.prediction_log_path is None
    assert settings.request_log is False


def test_every_variable_is_read() -> None:
    env = {
        "MODEL_DIR": "/m",
        "HOST": "127.0.0.1",
        "PORT": "9000",
        "INFERENCE_WORKERS": "3",
        "ORT_INTRA_OP_THREADS": "2",
        "MAX_BATCH_SIZE": "16",
        "MAX_BATCH_TOKENS": "4096",
        "BATCH_MAX_WAIT_MS": "2.5",
        "MAX_QUEUE_SIZE": "500",
        "RETRY_AFTER_S": "3",
        "MAX_TEXT_CHARS": "1000",
        "MAX_BATCH_ITEMS": "10",
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "JSON",
        "REQUEST_LOG": "yes",
        "SHUTDOWN_TIMEOUT_S": "4",
        "PREDICTION_LOG_PATH": "/tmp/p.jsonl",
        "PREDICTION_LOG_TEXT": "1",
        "PREDICTION_LOG_QUEUE_SIZE": "7",
    }
    s = Settings.from_env(env)
    assert (s.host, s.port, s.inference_workers, s.ort_intra_op_threads) == ("127.0.0.1", 9000, 3, 2)
    assert (s.max_batch_size, s.max_batch_tokens, s.batch_max_wait_ms, s.max_queue_size) == (
        16,
        4096,
        2.5,
        500,
    )
    assert (s.retry_after_s, s.max_text_chars, s.max_batch_items) == (3, 1000, 10)
    assert (s.log_level, s.log_format, s.request_log, s.shutdown_timeout_s) == ("DEBUG", "json", True, 4.0)
    assert s.prediction_log_path == Path("/tmp/p.jsonl")
    assert (s.prediction_log_text, s.prediction_log_queue_size) == (True, 7)


def test_empty_values_mean_default() -> None:
    assert Settings.from_env({"MODEL_DIR": "m", "PORT": "", "PREDICTION_LOG_PATH": " "}).port == 8080


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({}, "MODEL_DIR is not set"),
        ({"PORT": "http"}, "PORT='http' is invalid: expected an integer between 1 and 65535"),
        ({"PORT": "70000"}, "PORT=70000 is out of range"),
        ({"MAX_BATCH_SIZE": "0"}, "MAX_BATCH_SIZE=0 is out of range"),
        ({"BATCH_MAX_WAIT_MS": "nan"}, "BATCH_MAX_WAIT_MS=nan is out of range"),
        ({"REQUEST_LOG": "maybe"}, "REQUEST_LOG='maybe' is invalid: expected one of true/false"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' is invalid: expected one of CRITICAL, ERROR"),
        (
            {"MAX_QUEUE_SIZE": "8", "MAX_BATCH_ITEMS": "64"},
            "MAX_QUEUE_SIZE (8) must be at least MAX_BATCH_ITEMS",
        ),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    if env:
        env = {"MODEL_DIR": "m", **env}
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert fragment in str(info.value)


def test_issue12_settings() -> None:
    defaults = Settings.from_env({"MODEL_DIR": "/m"})
    assert defaults.max_batch_size is None  # by device
    assert defaults.batch_limits("cpu") == (1, 256)
    assert defaults.batch_limits("cuda") == (32, 16_384)
    assert defaults.inflight_limit == defaults.max_queue_size + defaults.inference_workers
    assert defaults.request_timeout_s == 30.0 and defaults.execution_provider == "auto"
    env = {
        "MODEL_DIR": "/m",
        "MAX_BATCH_SIZE": "4",
        "MAX_INFLIGHT_REQUESTS": "50",
        "REQUEST_TIMEOUT_S": "2.5",
        "EXECUTION_PROVIDER": "cuda",
        "GPU_MAX_BATCH_SIZE": "64",
        "PREDICTION_LOG_PATH": "-",
        "PREDICTION_LOG_MAX_BYTES": "1000",
        "PREDICTION_LOG_BACKUPS": "2",
        "SHUTDOWN_TIMEOUT_S": "0",
    }
    s = Settings.from_env(env)
    assert s.batch_limits("cpu") == (4, 256) and s.batch_limits("cuda") == (4, 16_384)
    assert s.inflight_limit == 50 and s.request_timeout_s == 2.5 and s.execution_provider == "cuda"
    assert s.gpu_max_batch_size == 64 and s.prediction_log_stdout
    assert (s.prediction_log_max_bytes, s.prediction_log_backups, s.shutdown_timeout_s) == (1000, 2, 0.0)
    with pytest.raises(SettingsError, match="EXECUTION_PROVIDER='tpu' is invalid"):
        Settings.from_env({"MODEL_DIR": "/m", "EXECUTION_PROVIDER": "tpu"})
    with pytest.raises(SettingsError, match="SERVER_INJECT_FAULT"):
        Settings.from_env({"MODEL_DIR": "/m", "SERVER_INJECT_FAULT": "everything"})


def test_idle_threads_follow_the_cores() -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    auto = Settings.from_env({"MODEL_DIR": "/m"})
    assert auto.idle_threads == (cores if cores > 1 else 0)
    assert Settings.from_env({"MODEL_DIR": "/m", "ORT_IDLE_THREADS": "0"}).idle_threads == 0
    assert Settings.from_env({"MODEL_DIR": "/m", "ORT_IDLE_THREADS": "4"}).idle_threads == 4
