"""A ``model.pooling=mean`` run through the real chain: train (smoke) -> export (the gate at production
thresholds, quality floor waived as for every tiny model) -> a bundle whose graph is the mean-pooled model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from export.verify import torch_logits
from tests.fixtures.bundle import build_tiny_bundle, server_like_logits
from tests.fixtures.checkpoint import compose_training_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.run import train

    run_dir = tmp_path_factory.mktemp("mean_run")
    cfg = compose_training_config(["experiment=smoke", "model.pooling=mean"])
    cfg.data.output_dir = str(run_dir / "processed")
    threads = torch.get_num_threads()
    try:
        train(cfg, run_dir)
    finally:
        torch.set_num_threads(threads)
    return run_dir


@pytest.fixture(scope="module")
def mean_bundle(mean_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mean_bundle") / "bundle"
    return build_tiny_bundle(mean_run / "checkpoints" / "best", mean_run / "processed", out, quantize=False)


def test_mean_run_records_its_pooling(mean_run: Path) -> None:
    best = mean_run / "checkpoints" / "best"
    config = json.loads((best / "config.json").read_text())
    assert config["architectures"] == ["BertMeanPoolForSequenceClassification"]
    assert config["pooling"] == "mean"
    assert json.loads((best / "recipe.json").read_text())["pooling"] == "mean"
    report = json.loads((mean_run / "metrics" / "report.json").read_text())
    assert 0.0 <= report["transformer"]["test"]["macro_f1"] <= 1.0  # evaluate scored it (with its own class)


def test_mean_bundle_serves_the_mean_pooled_model(
    mean_bundle: Path, mean_run: Path, sample_prepared: Any
) -> None:
    manifest = json.loads((mean_bundle / "manifest.json").read_text())
    assert manifest["pooling"] == "mean"
    assert manifest["gate"]["passed"] is True
    best = mean_run / "checkpoints" / "best"
    val = sample_prepared.val.iloc[:12]
    served = server_like_logits(mean_bundle, list(val["subject"]), list(val["body"]))
    reference = torch_logits(best, list(val["text"]), manifest["max_length"], batch_size=4).logits
    np.testing.assert_allclose(served, reference, atol=1e-3)

    # and not what the Auto class (main_export's reload) would have made of the same checkpoint
    auto = AutoModelForSequenceClassification.from_pretrained(best).eval()
    tokenizer = AutoTokenizer.from_pretrained(best)
    enc = tokenizer(list(val["text"]), truncation=True, max_length=manifest["max_length"], padding=True,
                    return_tensors="pt")  # fmt: skip
    with torch.inference_mode():
        cls_logits = auto(**enc).logits.numpy()
    assert np.abs(cls_logits - served).max() > 1e-2
