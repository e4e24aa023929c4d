"""Logging set-up of `python -m server` (the process itself is tested in test_process.py)."""

from __future__ import annotations

import json
import logging

import pytest

from server.__main__ import _JsonFormatter, configure_logging


def test_json_log_lines() -> None:
    record = logging.LogRecord("server.app", logging.WARNING, __file__, 1, "queue %s", ("full",), None)
    entry = json.loads(_JsonFormatter().format(record))
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "queue full"
    assert entry["logger"] == "server.app"


def test_configure_logging_once(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    configure_logging("DEBUG", "json")
    configure_logging("WARNING", "text")  # a second call replaces, never stacks, the handler
    assert len(root.handlers) == 1
    assert root.level == logging.WARNING
    assert not isinstance(root.handlers[0].formatter, _JsonFormatter)
