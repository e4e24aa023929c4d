"""A randomly initialised small BERT plus a WordPiece tokenizer trained on the training texts (seconds on
CPU).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenizers import BertWordPieceTokenizer
from tokenizers.processors import BertProcessing
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


def train_wordpiece_tokenizer(
    texts: Sequence[str], vocab_size: int, max_length: int
) -> PreTrainedTokenizerFast:
    """Cased WordPiece (multilingual text, accents kept) as a fast HF tokenizer, BERT specials."""
    wordpiece = BertWordPieceTokenizer(lowercase=False, strip_accents=False, clean_text=True)
    wordpiece.train_from_iterator(
        list(texts),
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        show_progress=False,
    )
    backend = wordpiece._tokenizer  # the Rust tokenizer (normalizer, pre-tokenizer, model)
    # Trained from scratch, so the [CLS] ... [SEP] post-processor BERT models expect is not set yet.
    backend.post_processor = BertProcessing(
        ("[SEP]", backend.token_to_id("[SEP]")), ("[CLS]", backend.token_to_id("[CLS]"))
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=max_length,
        **SPECIAL_TOKENS,
    )
    tokenizer.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    return tokenizer


def build_tiny_model(
    model_cfg: Mapping[str, Any], tokenizer: PreTrainedTokenizerFast, **label_maps: Any
) -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=int(model_cfg.get("hidden_size", 64)),
        num_hidden_layers=int(model_cfg.get("num_layers", 2)),
        num_attention_heads=int(model_cfg.get("num_heads", 2)),
        intermediate_size=int(model_cfg.get("intermediate_size", 128)),
        max_position_embeddings=max(int(model_cfg["max_length"]), 64),
        pad_token_id=tokenizer.pad_token_id,
        **label_maps,
    )
    return BertForSequenceClassification(config)
