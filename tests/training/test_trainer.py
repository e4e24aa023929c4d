"""TicketTrainer in-process on a tiny model: the loss, the optimizer groups, accumulation, the seeded
length-grouped sampler and the profiler switch (what the project adds to ``transformers.Trainer``)."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from omegaconf import OmegaConf
from transformers import DataCollatorWithPadding

from tests.fixtures.checkpoint import compose_training_config
from training.models import load_model
from training.run import training_arguments
from training.trainer import (
    ProfilerCallback,
    SeededLengthGroupedSampler,
    TicketTrainer,
    balanced_class_weights,
)

LABELS = ["low", "medium", "high"]
TEXTS = [
    f"ticket {i} {'server down urgent' if i % 3 == 2 else 'invoice question' if i % 3 else 'small typo'}"
    for i in range(60)
]


def _trainer(tmp_path: Path, callbacks: list[Any] | None = None, **overrides: Any) -> TicketTrainer:
    cfg = compose_training_config(["experiment=smoke"]).trainer
    cfg = OmegaConf.merge(cfg, {"log_every_n_steps": 1, "save_every_n_steps": 0, "lr": 1e-3, **overrides})
    loaded = load_model({"name": "tiny", "max_length": 16, "vocab_size": 200}, LABELS, TEXTS)
    ids = [loaded.tokenizer(t, truncation=True, max_length=16)["input_ids"] for t in TEXTS]
    rows = [{"input_ids": x, "label": i % 3} for i, x in enumerate(ids)]
    args = training_arguments(cfg, tmp_path / "checkpoints" / "last", 0, [])
    args.save_strategy = args.eval_strategy = "no"
    return TicketTrainer(
        model=loaded.model,
        args=args,
        train_dataset=rows,
        data_collator=DataCollatorWithPadding(loaded.tokenizer),
        processing_class=loaded.tokenizer,
        callbacks=callbacks,
        class_weights=balanced_class_weights([0, 0, 1, 2], 3) if overrides.get("class_weights") else None,
        label_smoothing=float(cfg.label_smoothing),
        head_lr_multiplier=float(cfg.head_lr_multiplier),
    )


@pytest.mark.parametrize("accum", [1, 3])
def test_gradient_accumulation_sets_the_optimizer_step_count(tmp_path: Path, accum: int) -> None:
    trainer = _trainer(tmp_path, grad_accum_steps=accum, max_epochs=2)
    trainer.train()
    batches = math.ceil(60 / 8)  # 8 micro-batches per epoch
    assert trainer.state.global_step == 2 * math.ceil(batches / accum) == trainer.lr_scheduler.last_epoch
    lrs = [e["learning_rate"] for e in trainer.state.log_history if "learning_rate" in e]
    assert max(lrs) <= 1e-3 + 1e-12 and lrs[-1] < max(lrs), "linear warmup then decay"


def test_head_learns_faster_and_norms_skip_weight_decay(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, head_lr_multiplier=10.0, weight_decay=0.01)
    optimizer = trainer.create_optimizer()
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    seen_head = seen_norm = False
    for group in optimizer.param_groups:
        group_names = [names[id(p)] for p in group["params"]]
        is_head = all(n.startswith("classifier") for n in group_names)
        assert group["lr"] == pytest.approx(1e-2 if is_head else 1e-3)
        assert is_head or not any(n.startswith("classifier") for n in group_names)
        if any("LayerNorm" in n or n.endswith("bias") for n in group_names):
            seen_norm = True
            assert group["weight_decay"] == 0.0
        seen_head |= is_head
    assert seen_head and seen_norm
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(trainer.model.parameters()))


def test_loss_is_class_weighted_and_label_smoothed(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, class_weights="balanced", label_smoothing=0.1)
    batch = trainer.data_collator(trainer.train_dataset[:6])  # type: ignore[index]
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = F.cross_entropy(
        logits, batch["labels"], weight=balanced_class_weights([0, 0, 1, 2], 3), label_smoothing=0.1
    )
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert float(loss) != pytest.approx(float(F.cross_entropy(logits, batch["labels"])), rel=1e-3)


def test_balanced_class_weights() -> None:
    assert balanced_class_weights([0, 1, 1, 1, 2, 2], 3).tolist() == pytest.approx([2.0, 2 / 3, 1.0])


def test_sampler_order_depends_only_on_seed_and_epoch() -> None:
    rng = random.Random(0)
    rows = [{"input_ids": [1] * rng.randint(5, 256)} for _ in range(2000)]
    sampler = SeededLengthGroupedSampler(16, rows, seed=1)
    sampler.set_epoch(2)
    first = list(sampler)
    assert sorted(first) == list(range(2000))
    sampler.set_epoch(1)
    assert list(sampler) != first
    fresh = SeededLengthGroupedSampler(16, rows, seed=1)  # a resumed process: same epoch, same order
    fresh.set_epoch(2)
    assert list(fresh) == first

    def padded(order: list[int]) -> int:
        batches = [order[i : i + 16] for i in range(0, len(order), 16)]
        return sum(len(b) * max(len(rows[i]["input_ids"]) for i in b) for b in batches)

    shuffled = list(range(2000))
    rng.shuffle(shuffled)
    assert padded(first) < 0.7 * padded(shuffled), "length grouping cuts padding"


def test_profiler_writes_a_trace(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, callbacks=[ProfilerCallback(tmp_path / "profiler")], max_epochs=1)
    trainer.train()
    traces = list((tmp_path / "profiler").glob("*.pt.trace.json*"))
    assert traces and traces[0].stat().st_size > 1000
