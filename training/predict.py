"""Batched inference for ``training.evaluate``: tokenize once, run the longest texts first (little padding),
pad each batch with the tokenizer, return the logits in input order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of every text, truncated to ``max_length`` (special tokens included), not padded."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, return_token_type_ids=False)
    return [list(ids) for ids in encoded["input_ids"]]


def longest_first(ids: Sequence[Sequence[int]]) -> list[int]:
    return sorted(range(len(ids)), key=lambda i: -len(ids[i]))


@torch.inference_mode()
def predict_logits(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    *,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> np.ndarray:
    """Logits ``[n, num_labels]`` of ``texts`` in input order (``model`` is put in eval mode)."""
    ids = encode_texts(tokenizer, texts, max_length)
    order = longest_first(ids)
    model.eval()
    outputs = [np.zeros((0, model.config.num_labels), dtype=np.float32)]
    for start in range(0, len(order), batch_size):
        rows = [{"input_ids": ids[i]} for i in order[start : start + batch_size]]
        batch = tokenizer.pad(rows, return_tensors="pt")
        logits = model(**{k: v.to(device or "cpu") for k, v in batch.items()}).logits
        outputs.append(logits.float().cpu().numpy())
    result = np.empty_like(stacked := np.concatenate(outputs))
    result[np.asarray(order, dtype=np.int64)] = stacked
    return result
