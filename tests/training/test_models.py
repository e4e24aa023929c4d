"""The model registry (training/models.py) on a local Hugging Face folder: what ``model.*`` keys change."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import BertConfig, BertModel

from training.models import load_model, train_wordpiece_tokenizer

LABELS = ["low", "medium", "high"]
TEXTS = [f"ticket {i} server down invoice question login fails" for i in range(40)]


@pytest.fixture
def local_bert(tmp_path: Path) -> Path:
    tokenizer = train_wordpiece_tokenizer(TEXTS, vocab_size=120, max_length=32)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(tmp_path / "bert")  # an encoder without a head, as on the hub
    tokenizer.save_pretrained(tmp_path / "bert")
    return tmp_path / "bert"


@pytest.mark.parametrize("dropout", [None, 0.3])
def test_dropout_reaches_the_encoder_and_labels_the_head(local_bert: Path, dropout: float | None) -> None:
    cfg = {
        "name": "distilbert_multilingual",
        "pretrained": str(local_bert),
        "max_length": 32,
        "dropout": dropout,
    }
    loaded = load_model(cfg, LABELS, TEXTS)
    config = loaded.model.config
    assert config.hidden_dropout_prob == pytest.approx(0.1 if dropout is None else dropout)
    assert config.num_labels == 3 and config.id2label[2] == "high" and config.label2id["low"] == 0
    assert loaded.pretrained == str(local_bert) and loaded.tokenizer.model_max_length == 32
