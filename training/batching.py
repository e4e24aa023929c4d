"""Tokenize once, then pad per batch: how inference (``training.predict``) batches. Training batches with
``DataCollatorWithPadding`` and the Trainer's length-grouped sampler (``training/trainer.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of every text, truncated to ``max_length`` (special tokens included), not padded."""
    encoded = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return [list(ids) for ids in encoded["input_ids"]]


class Collator:
    """Pad rows ``{"input_ids": [...]}`` to the batch's longest row: ``input_ids`` + ``attention_mask``."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(row["input_ids"]) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row["input_ids"])] = torch.tensor(row["input_ids"], dtype=torch.long)
            attention_mask[i, : len(row["input_ids"])] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}


def length_sorted_order(lengths: Sequence[int]) -> list[int]:
    """Indices sorted by length, longest first (inference: little padding; re-ordered after)."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])
