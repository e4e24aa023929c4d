"""Every config composes (a broken YAML fails here, not on a GPU), and the sweep only names real keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from training.checks import MODEL_NAMES

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


def _compose(overrides: list[str], hydra_cfg: bool = False) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=hydra_cfg)


def test_the_three_experiments_exist() -> None:
    assert {"best", "quick", "smoke"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_resolves(experiment: str) -> None:
    cfg = _compose([f"experiment={experiment}"])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    assert resolved["model"]["name"] in MODEL_NAMES
    assert resolved["trainer"]["batch_size"] >= 1 and resolved["trainer"]["lr"] > 0
    assert resolved["logger"]["name"] in ("wandb", "none")
    assert resolved["data"]["paths"], "no data paths"


@pytest.mark.parametrize(
    ("experiment", "model", "precision", "data"),
    [
        ("best", "distilbert_multilingual", "bf16", "full"),
        ("quick", "minilm", "fp32", "sample"),
        ("smoke", "tiny", "fp32", "sample"),
    ],
)
def test_experiment_choices(experiment: str, model: str, precision: str, data: str) -> None:
    cfg = _compose([f"experiment={experiment}"])
    assert cfg.model.name == model
    assert cfg.trainer.precision == precision
    assert cfg.data.name == data


def test_default_config_runs_offline_on_the_sample() -> None:
    cfg = _compose([])
    assert cfg.model.name == "minilm" and cfg.data.name == "sample"
    assert cfg.logger.name == "wandb" and cfg.logger.mode == "auto"


def test_every_group_option_composes() -> None:
    for group in ("model", "trainer", "logger", "data"):
        for option in sorted(p.stem for p in (CONFIGS / group).glob("*.yaml") if p.stem != "base"):
            cfg = _compose([f"{group}={option}"])
            assert OmegaConf.to_container(cfg, resolve=True)


def test_run_dirs() -> None:
    cfg = _compose([], hydra_cfg=True)
    assert cfg.hydra.run.dir.startswith("outputs/train/")
    assert cfg.hydra.sweep.dir.startswith("outputs/multirun/")


def test_sweep_parameters_are_real_config_keys() -> None:
    sweep = yaml.safe_load((CONFIGS / "sweep.yaml").read_text())
    assert sweep["method"] == "bayes" and sweep["metric"] == {"name": "eval/macro_f1", "goal": "maximize"}
    assert {"trainer.lr", "trainer.batch_size", "trainer.weight_decay", "trainer.warmup_ratio"} == set(
        sweep["parameters"]
    )
    assert "${args_no_hyphens}" in sweep["command"] and "training.run" in sweep["command"]
    # a sample of the values the agent would pass composes as Hydra overrides
    cfg = _compose(
        [
            "experiment=best",
            "trainer.lr=3e-05",
            "trainer.batch_size=64",
            "trainer.weight_decay=0.05",
            "trainer.warmup_ratio=0.1",
        ]
    )
    assert cfg.trainer.lr == pytest.approx(3e-5) and cfg.trainer.batch_size == 64
