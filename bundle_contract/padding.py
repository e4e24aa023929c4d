"""The padding rule of the contract: right-pad each batch to its longest input with ``pad_token_id``.

The attention mask is 1 on real tokens and 0 on padding; ``token_type_ids`` are padded with 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pad_batch"]


def pad_batch(
    ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]] | None, pad_id: int
) -> dict[str, np.ndarray]:
    """``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, ``[len(ids), longest]``)."""
    n = len(ids)
    width = max((len(row) for row in ids), default=0)
    input_ids = np.full((n, width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((n, width), dtype=np.int64)
    token_type_ids = np.zeros((n, width), dtype=np.int64)
    for row, seq in enumerate(ids):
        k = len(seq)
        input_ids[row, :k] = seq
        attention_mask[row, :k] = 1
        if type_ids is not None:
            token_type_ids[row, :k] = type_ids[row]
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
