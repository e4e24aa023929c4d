"""Tokenize once, then batch with dynamic padding and length grouping.

Padding every batch to ``max_length`` 256 made CPU training about 2x slower on real tickets (they average ~130
tokens): see ``benchmarks/train_throughput.py``. Batches are therefore padded to their own longest
row, and rows of similar length are grouped (shuffle, cut into mega-batches of ``batch_size * 50``, sort each
by length, shuffle the batch order), the scheme of Hugging Face's ``LengthGroupedSampler``, made DDP-aware:
every rank takes a strided shard of the same permutation (like ``DistributedSampler``) so all ranks see the
same number of batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import torch
from torch.utils.data import Dataset, Sampler

Padding = Literal["dynamic", "max_length"]


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


class TokenizedDataset(Dataset[dict[str, Any]]):
    """Pre-tokenized rows: ``{"input_ids": list[int], "label": int}``."""

    def __init__(self, input_ids: list[list[int]], labels: Sequence[int]) -> None:
        if len(input_ids) != len(labels):
            raise ValueError(f"{len(input_ids)} encoded texts but {len(labels)} labels")
        self.input_ids = input_ids
        self.labels = [int(label) for label in labels]

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.input_ids[index], "label": self.labels[index]}

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


class Collator:
    """Pad a list of rows into tensors: to the batch's longest row (``dynamic``) or to ``max_length``."""

    def __init__(
        self, pad_token_id: int, padding: Padding = "dynamic", max_length: int | None = None
    ) -> None:
        if padding not in ("dynamic", "max_length"):
            raise ValueError(f"padding must be 'dynamic' or 'max_length', got {padding!r}")
        if padding == "max_length" and not max_length:
            raise ValueError("padding='max_length' needs max_length")
        self.pad_token_id = pad_token_id
        self.padding = padding
        self.max_length = max_length

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(row["input_ids"]) for row in rows)
        width = self.max_length if self.padding == "max_length" and self.max_length else longest
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids = row["input_ids"][:width]
            input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[i, : len(ids)] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "label" in rows[0]:
            batch["labels"] = torch.tensor([int(row["label"]) for row in rows], dtype=torch.long)
        return batch


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Deterministic (seed, epoch) batches of indices, optionally length-grouped and sharded over DDP ranks.

    ``set_epoch`` must be called before each epoch (as with ``DistributedSampler``); ``start_batch`` skips the
    first batches of the epoch, which is how a run resumed mid-epoch continues exactly where it stopped.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        group_by_length: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        mega_batch_mult: int = 50,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.mega_batch_mult = mega_batch_mult
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    @property
    def shard_size(self) -> int:
        return math.ceil(len(self.lengths) / self.world_size) if self.lengths else 0

    @property
    def batches_per_epoch(self) -> int:
        """Batches of a full epoch on this rank (the same on every rank)."""
        if not self.group_by_length:
            return math.ceil(self.shard_size / self.batch_size)
        mega = self.batch_size * self.mega_batch_mult
        full, rest = divmod(self.shard_size, mega)
        return full * math.ceil(mega / self.batch_size) + math.ceil(rest / self.batch_size)

    def batches(self) -> list[list[int]]:
        """All batches of the current epoch on this rank, before ``start_batch`` is applied."""
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        n = len(self.lengths)
        order = torch.randperm(n, generator=generator).tolist() if self.shuffle else list(range(n))
        total = self.shard_size * self.world_size
        order += order[: total - n]  # pad so every rank gets the same number of rows
        shard = order[self.rank : total : self.world_size]
        if self.group_by_length:
            mega = self.batch_size * self.mega_batch_mult
            batches = []
            for start in range(0, len(shard), mega):
                chunk = sorted(shard[start : start + mega], key=lambda i: -self.lengths[i])
                batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
            if self.shuffle:
                batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        else:
            batches = [shard[i : i + self.batch_size] for i in range(0, len(shard), self.batch_size)]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches()[self.start_batch :])

    def __len__(self) -> int:
        return max(self.batches_per_epoch - self.start_batch, 0)


def length_sorted_order(lengths: Sequence[int]) -> list[int]:
    """Indices sorted by length, longest first (inference: little padding; re-ordered after)."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])
