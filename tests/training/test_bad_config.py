"""A bad config ends the run with one clear line (exit code != 0), never a wall of traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.checkpoint import compose_training_config
from training.checks import check_config
from training.errors import ConfigError, ModelLoadError
from training.models import load_model

from .helpers import run_training

pytestmark = pytest.mark.slow


def test_unknown_model_group_option(tmp_path: Path) -> None:
    result = run_training(["model=bert_huge"], tmp_path / "run")
    assert result.returncode != 0
    assert "Could not find 'model/bert_huge'" in result.stderr
    assert "distilbert_multilingual" in result.stderr and "tiny" in result.stderr  # lists the options
    assert "Traceback" not in result.stderr


def test_missing_data_path(tmp_path: Path) -> None:
    missing = (tmp_path / "no-such-dir" / "tickets.csv").as_posix()
    result = run_training(["experiment=smoke", f"data.paths=[{missing}]"], tmp_path / "run")
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert f"data path not found: {missing}" in output
    assert "Traceback" not in output


def test_unknown_model_name_value() -> None:
    cfg = compose_training_config(["experiment=smoke", "model.name=gpt5"])
    with pytest.raises(
        ConfigError, match=r"unknown model\.name 'gpt5': choose one of distilbert_multilingual"
    ):
        check_config(cfg)


def test_unknown_pooling_value() -> None:
    cfg = compose_training_config(["experiment=smoke", "model.pooling=max"])
    with pytest.raises(ConfigError, match=r"model\.pooling must be one of cls, mean, not 'max'"):
        check_config(cfg)


def test_hub_model_offline_fails_fast_with_one_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))  # an empty cache
    with pytest.raises(
        ModelLoadError, match="could not load model 'distilbert-base-multilingual-cased'"
    ) as info:
        load_model(
            {
                "name": "distilbert_multilingual",
                "pretrained": "distilbert-base-multilingual-cased",
                "max_length": 32,
            },
            ["low", "medium", "high"],
            [],
        )
    assert "model=minilm" in str(info.value)
