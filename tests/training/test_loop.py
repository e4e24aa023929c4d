"""The loop on a tiny model in-process: gradient accumulation, the schedule, class weights, profiler trace."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from training.batching import TokenizedDataset
from training.distributed import DistInfo
from training.loop import EvalSet, Trainer, balanced_class_weights
from training.models import load_model
from training.tracking import Tracker

LABELS = ["low", "medium", "high"]
TEXTS = [
    f"ticket {i} {'server down urgent' if i % 3 == 2 else 'invoice question' if i % 3 else 'small typo'}"
    for i in range(60)
]


class _Recorder(Tracker):
    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, float]]] = []

    def log_step(self, step: int, values: Any) -> None:
        self.steps.append((step, dict(values)))


def _trainer(tmp_path: Path, **overrides: Any) -> tuple[Trainer, _Recorder, list[dict[str, Any]]]:
    loaded = load_model({"name": "tiny", "max_length": 16, "vocab_size": 200}, LABELS, TEXTS)
    ids = [loaded.tokenizer(t, truncation=True, max_length=16)["input_ids"] for t in TEXTS]
    labels = [i % 3 for i in range(60)]
    cfg: dict[str, Any] = {
        "batch_size": 8,
        "eval_batch_size": 32,
        "grad_accum_steps": 1,
        "lr": 1e-3,
        "head_lr_multiplier": 1.0,
        "weight_decay": 0.01,
        "warmup_ratio": 0.25,
        "max_grad_norm": 1.0,
        "max_epochs": 2,
        "early_stopping_patience": None,
        "save_every_n_steps": 0,
        "log_every_n_steps": 1,
        "progress_bar": False,
        "class_weights": None,
        "precision": "fp32",
    }
    cfg.update(overrides)
    recorder = _Recorder()
    improved: list[dict[str, Any]] = []
    trainer = Trainer(
        model=loaded.model,
        train_set=TokenizedDataset(ids, labels),
        val_set=EvalSet(ids[:12], labels[:12], ["en"] * 12),
        labels=LABELS,
        cfg=cfg,
        seed=0,
        pad_token_id=0,
        max_length=16,
        dist_info=DistInfo(),
        device=torch.device("cpu"),
        tracker=recorder,
        run_dir=tmp_path,
        on_improved=lambda state, metrics: improved.append(metrics),
        on_state=lambda state: None,
    )
    return trainer, recorder, improved


@pytest.mark.parametrize("accum", [1, 3])
def test_gradient_accumulation_sets_the_optimizer_step_count(tmp_path: Path, accum: int) -> None:
    trainer, _, improved = _trainer(tmp_path, grad_accum_steps=accum)
    state = trainer.fit()
    batches = math.ceil(60 / 8)  # 8 micro-batches per epoch
    assert trainer.steps_per_epoch == math.ceil(batches / accum)
    assert state.global_step == 2 * math.ceil(batches / accum) == trainer.scheduler.last_epoch
    assert state.samples_seen == 120 and state.epoch == 2 and state.finished
    assert improved, "the first validation always counts as an improvement"


def test_warmup_then_linear_decay_is_applied(tmp_path: Path) -> None:
    trainer, recorder, _ = _trainer(tmp_path)
    trainer.fit()
    lrs = [values["lr"] for _, values in recorder.steps]
    peak = lrs.index(max(lrs))
    assert max(lrs) == pytest.approx(1e-3)
    assert lrs[:peak] == sorted(lrs[:peak]) and lrs[peak:] == sorted(lrs[peak:], reverse=True)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_head_learns_faster_and_norms_skip_weight_decay(tmp_path: Path) -> None:
    trainer, _, _ = _trainer(tmp_path, head_lr_multiplier=10.0)
    groups = trainer.optimizer.param_groups
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    for group in groups:
        group_names = [names[id(p)] for p in group["params"]]
        if all(n.startswith("classifier") for n in group_names):
            assert group["initial_lr"] == pytest.approx(1e-2)
        if any("LayerNorm" in n or n.endswith("bias") for n in group_names):
            assert group["weight_decay"] == 0.0


def test_balanced_class_weights() -> None:
    weights = balanced_class_weights([0, 1, 1, 1, 2, 2], 3)
    assert weights.tolist() == pytest.approx([2.0, 2 / 3, 1.0])


def test_profiler_writes_a_trace(tmp_path: Path) -> None:
    trainer, _, _ = _trainer(tmp_path, profile=True, max_epochs=1)
    trainer.fit()
    traces = list((tmp_path / "profiler").glob("*.pt.trace.json*"))
    assert traces and traces[0].stat().st_size > 1000
