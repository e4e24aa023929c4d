"""Dynamic padding and the length-grouped, DDP-sharded, resumable batch sampler."""

from __future__ import annotations

import random

import pytest
import torch

from training.batching import Collator, LengthGroupedBatchSampler


def _lengths(n: int = 203, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(5, 256) for _ in range(n)]


def test_every_row_once_per_epoch_and_epochs_differ() -> None:
    sampler = LengthGroupedBatchSampler(_lengths(), 16, seed=1)
    sampler.set_epoch(0)
    first = sampler.batches()
    assert sorted(i for batch in first for i in batch) == list(range(203))
    assert len(first) == sampler.batches_per_epoch == len(sampler)
    sampler.set_epoch(1)
    assert sampler.batches() != first
    sampler.set_epoch(0)
    assert sampler.batches() == first, "same seed and epoch -> same batches (what resume relies on)"


def test_start_batch_skips_exactly_the_consumed_batches() -> None:
    sampler = LengthGroupedBatchSampler(_lengths(), 16, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, start_batch=5)
    assert list(sampler) == full[5:] and len(sampler) == len(full) - 5


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_shards_cover_the_data_with_equal_batch_counts(world_size: int) -> None:
    lengths = _lengths()
    shards = []
    for rank in range(world_size):
        sampler = LengthGroupedBatchSampler(lengths, 8, seed=5, rank=rank, world_size=world_size)
        sampler.set_epoch(0)
        shards.append(sampler.batches())
    assert len({len(batches) for batches in shards}) == 1, "every rank must step the same number of times"
    seen = [i for batches in shards for batch in batches for i in batch]
    assert set(seen) == set(range(len(lengths)))
    assert len(seen) - len(lengths) < world_size, "only the DistributedSampler-style padding repeats rows"


def test_length_grouping_cuts_padding() -> None:
    lengths = _lengths(2000)
    padded = {}
    for grouped in (True, False):
        sampler = LengthGroupedBatchSampler(lengths, 16, seed=0, group_by_length=grouped)
        sampler.set_epoch(0)
        padded[grouped] = sum(len(b) * max(lengths[i] for i in b) for b in sampler.batches())
    assert padded[True] < 0.7 * padded[False]


def test_collator_pads_dynamically_or_to_max() -> None:
    rows = [{"input_ids": [2, 7, 3], "label": 1}, {"input_ids": [2, 3], "label": 0}]
    batch = Collator(pad_token_id=0)(rows)
    assert batch["input_ids"].tolist() == [[2, 7, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [1, 0]
    fixed = Collator(pad_token_id=0, padding="max_length", max_length=6)(rows)
    assert fixed["input_ids"].shape == (2, 6) and int(fixed["attention_mask"].sum()) == 5
    assert fixed["input_ids"].dtype == torch.long
    with pytest.raises(ValueError, match="needs max_length"):
        Collator(pad_token_id=0, padding="max_length")
