"""The Hydra data group, the DVC files and the pipeline definition parse and say what the docs say."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from training.data.config import PROJECT_ROOT, DataConfig, compose

# base.yaml is what the others inherit (name and paths ???), not a data set of its own
DATA_CONFIGS = sorted(p.stem for p in (PROJECT_ROOT / "configs" / "data").glob("*.yaml") if p.stem != "base")


def test_the_three_data_configs_exist() -> None:
    assert {"sample", "tickets", "full"} <= set(DATA_CONFIGS)


@pytest.mark.parametrize("name", DATA_CONFIGS)
def test_every_data_config_composes(name: str) -> None:
    cfg = compose("prepare", [f"data={name}"])
    config = DataConfig.from_cfg(cfg.data)
    assert config.name == name
    assert config.target == "priority" and config.labels == ["low", "medium", "high"]
    assert config.label_map["priority"] == {"very_low": "low", "critical": "high"}
    assert config.text_recipe == {"fields": ["subject", "body"], "separator": "\n"}
    assert config.output_dir == Path("data/processed") / name, "each data config prepares into its own dir"


def test_data_configs_only_say_what_differs_from_the_base() -> None:
    base = yaml.safe_load((PROJECT_ROOT / "configs" / "data" / "base.yaml").read_text(encoding="utf-8"))
    for name in ("sample", "tickets", "full"):
        own = yaml.safe_load((PROJECT_ROOT / "configs" / "data" / f"{name}.yaml").read_text(encoding="utf-8"))
        assert own["defaults"] == ["base", "_self_"]
        assert not [k for k in own if k != "defaults" and own[k] == base.get(k)], f"{name} repeats the base"


def test_default_is_the_sample_and_overrides_work() -> None:
    cfg = compose("prepare", ["data.paths=[../shared/data/tickets]", "data.target=queue", "data.labels=null"])
    config = DataConfig.from_cfg(cfg.data)
    assert config.name == "sample" and config.paths == ["../shared/data/tickets"]
    assert config.target == "queue" and config.labels is None
    assert compose("prepare").data.paths == ["data/sample/tickets.csv"]


def test_tickets_and_full_exclude_the_german_normalised_files() -> None:
    for name in ("tickets", "full"):
        exclude = compose("prepare", [f"data={name}"]).data.exclude
        assert any("german_normalized" in pattern for pattern in exclude)
    assert compose("prepare", ["data=full"]).data.paths == ["data/raw"]
    assert compose("prepare", ["data=tickets"]).data.paths == ["../shared/data/tickets"]


def test_dvc_remote_and_data_file() -> None:
    text = (PROJECT_ROOT / ".dvc" / "config").read_text(encoding="utf-8")
    remote = re.search(r"^\s*remote = (\S+)", text, re.MULTILINE)
    assert remote, "no default remote in .dvc/config"
    assert re.search(rf"remote \"{remote.group(1)}\"'?\]\s*\n\s*url = gs://", text)
    tracked = yaml.safe_load((PROJECT_ROOT / "data.dvc").read_text(encoding="utf-8"))
    assert tracked["outs"][0]["path"] == "data/raw"


def test_pipeline_stages_chain() -> None:
    stages = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert list(stages) == ["prepare", "train", "export"]  # train evaluates (report.json), once
    assert stages["prepare"]["cmd"].startswith("python -m training.data prepare")
    processed = "data/processed/${data}"  # one prepared dir per data config
    assert processed in stages["prepare"]["outs"] and processed in stages["train"]["deps"]
    assert stages["train"]["outs"][0] == stages["export"]["deps"][0]
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert "${export.flags}" in stages["export"]["cmd"] and "--quantize" in params["export"]["flags"]


@pytest.mark.slow
def test_dvc_parses_the_pipeline() -> None:
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    if not Path(dvc).exists():
        pytest.skip("the dvc command is not installed (uv sync installs it with the train group)")
    result = subprocess.run(
        [dvc, "dag", "--md"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    for stage in ("prepare", "train", "export", "data.dvc"):
        assert stage in result.stdout


def test_compose_works_when_hydra_was_left_initialised() -> None:
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    initialize_config_dir(config_dir=str(PROJECT_ROOT / "configs"), version_base="1.3")
    try:
        assert compose("prepare", ["data=full"]).data.name == "full"
    finally:
        GlobalHydra.instance().clear()
