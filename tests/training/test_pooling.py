"""``model.pooling=mean`` (training/pooling.py): the head reads the masked mean, a checkpoint reloads as what
it was trained as, and the exported ONNX graph computes the same function."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig, DistilBertConfig

from export.convert import export_fp32
from export.errors import ExportError
from training import pooling
from training.errors import ConfigError, ModelLoadError

LABELS = {"num_labels": 3, "id2label": {0: "low", 1: "medium", 2: "high"}}


def tiny_config(kind: str) -> BertConfig | DistilBertConfig:
    if kind == "bert":
        return BertConfig(
            vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=32, **LABELS,
        )  # fmt: skip
    return DistilBertConfig(
        vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=32, **LABELS
    )


def saved(kind: str, pool: str, dest: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    pooling.new_classifier(tiny_config(kind), pool).save_pretrained(dest)
    return dest


def batch(kind: str, pad_to: int = 0) -> dict[str, torch.Tensor]:
    ids = [[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]]
    mask = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    extra = max(0, pad_to - len(ids[0]))
    out = {
        "input_ids": torch.tensor([row + [0] * extra for row in ids]),
        "attention_mask": torch.tensor([row + [0] * extra for row in mask]),
    }
    if kind == "bert":
        out["token_type_ids"] = torch.zeros_like(out["input_ids"])
    return out


def logits(model: torch.nn.Module, feed: dict[str, torch.Tensor]) -> np.ndarray:
    with torch.inference_mode():
        return model.eval()(**feed).logits.numpy()


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_mean_pooled_checkpoint_reloads_as_itself_not_as_the_auto_class(kind: str, tmp_path: Path) -> None:
    path = saved(kind, "mean", tmp_path / "ckpt")
    config = json.loads((path / "config.json").read_text())
    assert config["pooling"] == "mean"
    assert config["architectures"] == [pooling.MEAN_POOL_CLASSES[kind].__name__]
    if kind == "bert":
        assert not any("pooler" in k for k in pooling.load_classifier(path).state_dict())

    reloaded = pooling.load_classifier(path)
    assert type(reloaded) is pooling.MEAN_POOL_CLASSES[kind]
    torch.manual_seed(0)
    fresh = pooling.new_classifier(tiny_config(kind), "mean")
    np.testing.assert_allclose(logits(reloaded, batch(kind)), logits(fresh, batch(kind)), atol=1e-6)

    # why every reader goes through load_classifier: the Auto class loads it without an error, as [CLS]
    auto = AutoModelForSequenceClassification.from_pretrained(path)
    assert type(auto) is not type(reloaded)
    assert np.abs(logits(auto, batch(kind)) - logits(reloaded, batch(kind))).max() > 1e-3


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_padding_never_moves_a_mean_pooled_prediction(kind: str, tmp_path: Path) -> None:
    model = pooling.load_classifier(saved(kind, "mean", tmp_path / "ckpt"))
    np.testing.assert_allclose(
        logits(model, batch(kind)), logits(model, batch(kind, pad_to=12)), atol=1e-5, rtol=1e-5
    )


def test_cls_checkpoint_loads_with_the_auto_class(tmp_path: Path) -> None:
    path = saved("bert", "cls", tmp_path / "ckpt")
    assert "pooling" not in json.loads((path / "config.json").read_text())
    assert type(pooling.load_classifier(path)).__name__ == "BertForSequenceClassification"


def test_unknown_or_inconsistent_pooling_fails_loudly(tmp_path: Path) -> None:
    path = saved("bert", "mean", tmp_path / "ckpt")
    config_file = path / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "pooling": "max"}))
    with pytest.raises(ModelLoadError, match="pooling 'max', which this version cannot load"):
        pooling.load_classifier(path)
    config_file.write_text(json.dumps({k: v for k, v in config.items() if k != "pooling"}))
    with pytest.raises(ModelLoadError, match="without pooling=mean"):
        pooling.load_classifier(path)
    with pytest.raises(ExportError, match="could not load"):
        export_fp32(path, tmp_path / "onnx")
    with pytest.raises(ConfigError, match=r"model\.pooling must be one of cls, mean"):
        pooling.new_classifier(tiny_config("bert"), "max")


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_exported_graph_is_the_mean_pooled_function(kind: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    path = saved(kind, "mean", tmp_path / "ckpt", seed=1)
    onnx_path = export_fp32(path, tmp_path / "onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    feed = batch(kind, pad_to=9)
    got = session.run(["logits"], {k: v.numpy() for k, v in feed.items() if k in names})[0]
    model = pooling.load_classifier(path)
    np.testing.assert_allclose(got, logits(model, feed), atol=1e-4)
    auto = AutoModelForSequenceClassification.from_pretrained(path)
    assert np.abs(got - logits(auto, feed)).max() > 1e-3  # not what main_export's Auto reload would trace
