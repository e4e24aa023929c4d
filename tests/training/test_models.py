"""The model registry (training/models.py) on a local Hugging Face folder: what ``model.*`` keys change."""

from __future__ import annotations

import subprocess
import sys
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


def test_tiny_wordpiece_vocabulary_is_the_same_in_every_process() -> None:
    """Two processes build the same vocabulary (``tokenizers``' trainer did not: ties broke in hash order)."""
    code = (
        "import hashlib, json, sys; from training.models import train_wordpiece_tokenizer; "
        "texts = [l.strip() for l in sys.stdin]; "
        "t = train_wordpiece_tokenizer(texts, vocab_size=200, max_length=32); "
        "print(hashlib.sha256(json.dumps(sorted(t.get_vocab().items())).encode()).hexdigest())"
    )
    texts = "\n".join(f"Ticket {i}: Drucker {i % 7} offline, invoice {i % 5} late, café" for i in range(60))
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], input=texts, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(digests) == 1 and len(next(iter(digests))) == 64


def test_tiny_wordpiece_covers_every_training_character_and_keeps_frequent_words() -> None:
    tokenizer = train_wordpiece_tokenizer(
        ["server down, dringend!", "server down again", "Café läuft nicht"], vocab_size=500, max_length=32
    )
    vocab = tokenizer.get_vocab()
    assert {"server", "down"} <= set(vocab) and "dringend" not in vocab  # seen once: below min_frequency
    tokens = tokenizer.tokenize("Café dringend")
    assert "[UNK]" not in tokens and tokens[0] == "C"
    ids = tokenizer("Café dringend")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Café dringend"
