"""The training loop: AdamW, linear warmup + decay, gradient accumulation and clipping, CUDA autocast, early
stopping on validation macro-F1, resumable mid-epoch from ``checkpoints/last``.

The loop owns no files: it calls ``on_improved`` (save ``best``) and ``on_state`` (save ``last``) on rank 0.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from training.batching import Collator, LengthGroupedBatchSampler, Padding, TokenizedDataset
from training.distributed import DistInfo, barrier, broadcast
from training.errors import ConfigError
from training.metrics import classification_metrics
from training.predict import autocast_context, predict_logits
from training.tracking import Tracker

log = logging.getLogger(__name__)

_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
_HEAD_PREFIXES = ("classifier", "pre_classifier")


@dataclass
class TrainState:
    """Everything needed to continue a run exactly where it stopped (besides model/optimizer tensors)."""

    epoch: int = 0  # epoch in progress (0-based)
    batch_in_epoch: int = 0  # micro-batches of that epoch already consumed
    global_step: int = 0  # optimizer steps taken
    samples_seen: int = 0
    train_seconds: float = 0.0
    best_metric: float = -math.inf
    best_epoch: int = -1
    best_step: int = -1
    epochs_without_improvement: int = 0
    stopped_early: bool = False
    finished: bool = False
    history: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"steps": [], "epochs": []})


@dataclass
class EvalSet:
    input_ids: list[list[int]]
    label_ids: list[int]
    languages: list[str]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def balanced_class_weights(label_ids: Sequence[int], num_labels: int) -> torch.Tensor:
    """``n / (k * count)`` per class (sklearn's "balanced"); a class absent from training gets weight 1."""
    counts = np.bincount(np.asarray(label_ids, dtype=np.int64), minlength=num_labels).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (num_labels * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


def build_optimizer(model: torch.nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norms; the freshly initialised head may learn faster."""
    lr = float(cfg["lr"])
    head_lr = lr * float(cfg.get("head_lr_multiplier", 1.0))
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_head = name.split(".")[0] in _HEAD_PREFIXES
        decay = not any(marker in name for marker in _NO_DECAY)
        groups.setdefault((is_head, decay), []).append(param)
    param_groups = [
        {
            "params": params,
            "lr": head_lr if is_head else lr,
            "weight_decay": float(cfg["weight_decay"]) if decay else 0.0,
        }
        for (is_head, decay), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)


class Trainer:
    def __init__(
        self,
        *,
        model: torch.nn.Module,
        train_set: TokenizedDataset,
        val_set: EvalSet,
        labels: Sequence[str],
        cfg: Mapping[str, Any],
        seed: int,
        pad_token_id: int,
        max_length: int,
        dist_info: DistInfo,
        device: torch.device,
        tracker: Tracker,
        run_dir: Path,
        on_improved: Callable[[TrainState, dict[str, Any]], None],
        on_state: Callable[[dict[str, Any]], None],
    ) -> None:
        self.cfg = cfg
        self.labels = list(labels)
        self.dist = dist_info
        self.device = device
        self.tracker = tracker
        self.run_dir = run_dir
        self.on_improved = on_improved
        self.on_state = on_state
        self.val_set = val_set
        self.pad_token_id = pad_token_id
        self.precision = str(cfg.get("precision", "fp32"))
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ConfigError(f"trainer.precision must be fp32, bf16 or fp16, got {self.precision!r}")
        if self.precision != "fp32" and device.type != "cuda":
            log.warning("trainer.precision=%s needs CUDA; training in fp32 on %s", self.precision, device)
            self.precision = "fp32"
        self.accum = int(cfg.get("grad_accum_steps", 1))
        if self.accum < 1:
            raise ConfigError(f"trainer.grad_accum_steps must be >= 1, got {self.accum}")

        self.model = model.to(device)
        self.sampler = LengthGroupedBatchSampler(
            train_set.lengths,
            int(cfg["batch_size"]),
            shuffle=True,
            group_by_length=bool(cfg.get("group_by_length", True)),
            seed=seed,
            rank=dist_info.rank,
            world_size=dist_info.world_size,
        )
        padding: Padding = "max_length" if cfg.get("padding") == "max_length" else "dynamic"
        self.loader = DataLoader(
            train_set,
            batch_sampler=self.sampler,
            collate_fn=Collator(pad_token_id, padding=padding, max_length=max_length),
            num_workers=int(cfg.get("num_workers", 0)),
        )
        self.steps_per_epoch = math.ceil(self.sampler.batches_per_epoch / self.accum)
        self.max_epochs = int(cfg["max_epochs"])
        self.total_steps = self.steps_per_epoch * self.max_epochs
        if cfg.get("max_steps"):
            self.total_steps = min(self.total_steps, int(cfg["max_steps"]))
        warmup = cfg.get("warmup_steps")
        self.warmup_steps = (
            int(warmup) if warmup is not None else int(float(cfg["warmup_ratio"]) * self.total_steps)
        )

        self.class_weights: torch.Tensor | None = None
        if cfg.get("class_weights") == "balanced":
            self.class_weights = balanced_class_weights(train_set.labels, len(self.labels)).to(device)
            log.info("class weights %s", dict(zip(self.labels, self.class_weights.tolist(), strict=True)))
        elif cfg.get("class_weights") not in (None, "none"):
            raise ConfigError(
                f"trainer.class_weights must be null or 'balanced', got {cfg.get('class_weights')!r}"
            )

        self.ddp_model: torch.nn.Module = self.model
        if dist_info.enabled:
            self.ddp_model = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, self.warmup_steps, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.state = TrainState()

    # ---- state
    # -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "trainer": asdict(self.state),
            "rng": rng_state(),
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("total_steps") != self.total_steps:
            raise ConfigError(
                f"cannot resume: the saved run plans {state.get('total_steps')} optimizer steps, this config "
                f"{self.total_steps} (batch size, epochs, data or grad accumulation changed); "
                "start a fresh run"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.state = TrainState(**state["trainer"])
        set_rng_state(state["rng"])
        log.info(
            "resumed at epoch %d, batch %d, optimizer step %d/%d",
            self.state.epoch,
            self.state.batch_in_epoch,
            self.state.global_step,
            self.total_steps,
        )

    def _save_state(self) -> None:
        if self.dist.is_main:
            self.on_state(self.state_dict())

    # ---- steps
    # -------------------------------------------------------------------------------------------------
    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast_context(self.device, self.precision):
            logits = self.ddp_model(
                input_ids=batch["input_ids"].to(self.device, non_blocking=True),
                attention_mask=batch["attention_mask"].to(self.device, non_blocking=True),
            ).logits
        return F.cross_entropy(
            logits.float(),
            batch["labels"].to(self.device, non_blocking=True),
            weight=self.class_weights,
            label_smoothing=float(self.cfg.get("label_smoothing", 0.0)),
        )

    def _optimizer_step(self) -> None:
        self.scaler.unscale_(self.optimizer)
        max_norm = self.cfg.get("max_grad_norm")
        if max_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(max_norm))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def validate(self) -> dict[str, Any]:
        logits = predict_logits(
            self.model,
            self.val_set.input_ids,
            pad_token_id=self.pad_token_id,
            batch_size=int(self.cfg.get("eval_batch_size", 64)),
            device=self.device,
            precision=self.precision,
        )
        preds = logits.argmax(axis=1) if len(logits) else np.zeros(0, dtype=np.int64)
        metrics = classification_metrics(self.val_set.label_ids, preds, self.labels, self.val_set.languages)
        metrics["predictions"] = preds.tolist()
        return metrics

    def _profiler(self) -> contextlib.AbstractContextManager[Any]:
        if not self.cfg.get("profile") or not self.dist.is_main:
            return contextlib.nullcontext()
        from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
        trace_dir = self.run_dir / "profiler"
        log.info("profiling optimizer steps 2-4 into %s", trace_dir)
        return profile(
            activities=activities,
            schedule=schedule(wait=1, warmup=1, active=3, repeat=1),
            on_trace_ready=tensorboard_trace_handler(str(trace_dir)),
            record_shapes=True,
        )

    # ---- the loop
    # ----------------------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        state = self.state
        log.info(
            "training: %d epochs x %d optimizer steps (batch %d x accum %d x world %d), warmup %d, %s",
            self.max_epochs,
            self.steps_per_epoch,
            self.sampler.batch_size,
            self.accum,
            self.dist.world_size,
            self.warmup_steps,
            self.precision,
        )
        log_every = max(int(self.cfg.get("log_every_n_steps", 10)), 1)
        save_every = int(self.cfg.get("save_every_n_steps") or 0)
        patience = self.cfg.get("early_stopping_patience")
        self.ddp_model.train()
        with self._profiler() as profiler:
            while state.epoch < self.max_epochs and not state.finished:
                epoch = state.epoch
                self.sampler.set_epoch(epoch, start_batch=state.batch_in_epoch)
                n_batches = self.sampler.batches_per_epoch
                progress = tqdm(
                    total=n_batches,
                    initial=state.batch_in_epoch,
                    desc=f"epoch {epoch + 1}/{self.max_epochs}",
                    disable=not (self.dist.is_main and self.cfg.get("progress_bar", True)),
                    dynamic_ncols=True,
                    mininterval=1.0,
                )
                running_loss, window_samples, window_start = 0.0, 0, time.perf_counter()
                micro = 0
                for batch_index, batch in enumerate(self.loader, start=state.batch_in_epoch):
                    tick = time.perf_counter()
                    is_step = (batch_index + 1) % self.accum == 0 or batch_index + 1 == n_batches
                    sync = contextlib.nullcontext()
                    if (
                        self.dist.enabled
                        and not is_step
                        and isinstance(self.ddp_model, DistributedDataParallel)
                    ):
                        sync = self.ddp_model.no_sync()  # type: ignore[assignment]
                    with sync:
                        loss = self._loss(batch)
                        steps_in_group = (
                            self.accum
                            if batch_index // self.accum < n_batches // self.accum
                            else (n_batches % self.accum or self.accum)
                        )
                        self.scaler.scale(loss / steps_in_group).backward()
                    micro += 1
                    batch_size = int(batch["input_ids"].shape[0])
                    running_loss += float(loss.detach()) * batch_size
                    window_samples += batch_size
                    state.samples_seen += batch_size * self.dist.world_size
                    state.train_seconds += time.perf_counter() - tick
                    progress.update(1)
                    if not is_step:
                        continue
                    step_tick = time.perf_counter()
                    self._optimizer_step()
                    state.train_seconds += time.perf_counter() - step_tick
                    state.global_step += 1
                    state.batch_in_epoch = batch_index + 1
                    if profiler is not None and hasattr(profiler, "step"):
                        profiler.step()
                    if state.global_step % log_every == 0 or state.batch_in_epoch == n_batches:
                        elapsed = max(time.perf_counter() - window_start, 1e-9)
                        values = {
                            "loss": running_loss / max(window_samples, 1),
                            "lr": float(self.scheduler.get_last_lr()[0]),
                            "samples_per_s": window_samples * self.dist.world_size / elapsed,
                        }
                        state.history["steps"].append({"step": state.global_step, "epoch": epoch, **values})
                        self.tracker.log_step(state.global_step, values)
                        progress.set_postfix(
                            loss=f"{values['loss']:.4f}", sps=f"{values['samples_per_s']:.1f}"
                        )
                        running_loss, window_samples, window_start = 0.0, 0, time.perf_counter()
                    if self.cfg.get("max_steps") and state.global_step >= int(self.cfg["max_steps"]):
                        state.finished = True
                        break
                    if (
                        save_every
                        and state.global_step % save_every == 0
                        and state.batch_in_epoch < n_batches
                    ):
                        self._save_state()
                progress.close()
                self._end_of_epoch(epoch, patience)
                self._save_state()
                barrier(self.dist)
        return state

    def _end_of_epoch(self, epoch: int, patience: Any) -> None:
        state = self.state
        decision: dict[str, Any] = {}
        if self.dist.is_main:
            metrics = self.validate()
            predictions = metrics.pop("predictions")
            improved = metrics["macro_f1"] > state.best_metric
            log.info(
                "epoch %d: val macro-F1 %.4f, accuracy %.4f, recall %s%s",
                epoch + 1,
                metrics["macro_f1"],
                metrics["accuracy"],
                {k: round(v["recall"], 3) for k, v in metrics["per_class"].items()},
                " (best so far)" if improved else "",
            )
            self.tracker.log_epoch(state.global_step, epoch + 1, metrics, self.labels)
            state.history["epochs"].append(
                {
                    "epoch": epoch + 1,
                    "step": state.global_step,
                    "val_macro_f1": metrics["macro_f1"],
                    "val_accuracy": metrics["accuracy"],
                }
            )
            if improved:
                state.best_metric = metrics["macro_f1"]
                state.best_epoch = epoch + 1
                state.best_step = state.global_step
                state.epochs_without_improvement = 0
                self.tracker.log_confusion(
                    "val/confusion_matrix", self.val_set.label_ids, predictions, self.labels
                )
                self.on_improved(state, metrics)
            else:
                state.epochs_without_improvement += 1
            stop = patience is not None and state.epochs_without_improvement >= int(patience)
            decision = {"stop": stop, "state": asdict(state)}
        decision = broadcast(self.dist, decision)
        if not self.dist.is_main:
            for key, value in decision["state"].items():  # in place: fit() holds a reference to this object
                setattr(state, key, value)
        if decision["stop"] and not state.finished:
            log.info("early stopping: no val macro-F1 gain for %d epoch(s)", state.epochs_without_improvement)
            state.stopped_early = True
            state.finished = True
        state.epoch = epoch + 1
        state.batch_in_epoch = 0
        if state.epoch >= self.max_epochs:
            state.finished = True
