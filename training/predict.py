"""Batched inference over pre-tokenized rows (validation during training, and ``training.evaluate``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from training.batching import Collator, length_sorted_order


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """bf16/fp16 autocast on CUDA; plain fp32 everywhere else (CPU autocast is slower than it saves here)."""
    if device.type == "cuda" and precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


def _batches(order: list[int], batch_size: int) -> Iterator[list[int]]:
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    input_ids: Sequence[Sequence[int]],
    *,
    pad_token_id: int,
    batch_size: int = 64,
    device: torch.device | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Logits ``[n, num_labels]`` in input order; longest rows first, so little padding."""
    device = device or torch.device("cpu")
    was_training = model.training
    model.eval()
    collate = Collator(pad_token_id)
    order = length_sorted_order([len(ids) for ids in input_ids])
    outputs: list[np.ndarray] = []
    try:
        for chunk in _batches(order, batch_size):
            batch = collate([{"input_ids": list(input_ids[i])} for i in chunk])
            with autocast_context(device, precision):
                logits = model(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
                ).logits
            outputs.append(logits.float().cpu().numpy())
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    stacked = np.concatenate(outputs)
    result = np.empty_like(stacked)
    result[np.asarray(order)] = stacked
    return result
