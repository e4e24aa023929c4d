"""The training loop is ``transformers.Trainer`` (accumulation, clipping, autocast, schedule, DDP, RNG states,
mid-epoch resume, W&B, progress bars); this module adds the project's loss, optimizer groups and (seed, epoch)
seeded sampler (``TicketTrainer``), validation/best/run_config handling (``RunCallback``) and the profiler
switch (``ProfilerCallback``). docs/training.md says what each does."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch.utils.data import RandomSampler
from transformers import EvalPrediction, Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from quality.metrics import classification_metrics
from training import checkpoint as ckpt
from training import tracking
from training.utils import write_json_atomic

log = logging.getLogger(__name__)

HEAD_PREFIXES = ("classifier", "pre_classifier")


def balanced_class_weights(label_ids: Sequence[int], num_labels: int) -> torch.Tensor:
    """``n / (k * count)`` per class (sklearn's "balanced"); a class absent from training gets weight 1."""
    counts = np.bincount(np.asarray(label_ids, dtype=np.int64), minlength=num_labels).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (num_labels * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


class _EpochSeeded:
    """``set_epoch`` (called by the Trainer before every epoch) reseeds the sampler's generator in place."""

    generator: torch.Generator
    seed: int

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed + epoch)


class SeededLengthGroupedSampler(_EpochSeeded, LengthGroupedSampler):
    def __init__(self, batch_size: int, dataset: Any, seed: int) -> None:
        super().__init__(
            batch_size, dataset=dataset, model_input_name="input_ids", generator=torch.Generator()
        )
        self.seed = seed
        self.set_epoch(0)


class SeededRandomSampler(_EpochSeeded, RandomSampler):
    def __init__(self, dataset: Any, seed: int) -> None:
        super().__init__(dataset, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)


class TicketTrainer(Trainer):
    def __init__(
        self,
        *args: Any,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        head_lr_multiplier: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights
        self.label_smoothing = label_smoothing
        self.head_lr_multiplier = head_lr_multiplier
        # compute_loss returns a batch mean: the Trainer must divide it by the accumulation steps itself
        self.model_accepts_loss_kwargs = False

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
        logits = outputs.logits.float()
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        loss = F.cross_entropy(logits, inputs["labels"], weight=weight, label_smoothing=self.label_smoothing)
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self) -> torch.optim.Optimizer:
        """The Trainer's optimizer (AdamW), no decay on biases and norms, the head at ``lr * multiplier``."""
        if self.optimizer is None:
            assert self.model is not None
            decay = set(self.get_decay_parameter_names(self.model))
            groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
            for name, param in self.model.named_parameters():
                if param.requires_grad:
                    groups.setdefault((name.startswith(HEAD_PREFIXES), name in decay), []).append(param)
            optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
            lr, wd = self.args.learning_rate, self.args.weight_decay
            self.optimizer = optimizer_cls(
                [
                    {
                        "params": ps,
                        "lr": lr * (self.head_lr_multiplier if head else 1.0),
                        "weight_decay": wd * d,
                    }
                    for (head, d), ps in groups.items()
                ],
                **kwargs,
            )
        return self.optimizer

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.args.group_by_length:
            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return SeededLengthGroupedSampler(batch, dataset, self.args.seed)
        return SeededRandomSampler(dataset, self.args.seed)


class RunCallback(TrainerCallback):
    """Validation metrics, ``best``, ``run_config.json`` and epoch-end saves (files on rank 0 only)."""

    def __init__(
        self,
        checkpoints_dir: Path,
        tokenizer: Any,
        labels: Sequence[str],
        languages: Sequence[str],
        json_files: Mapping[str, Mapping[str, Any]],
        run_config: Mapping[str, Any],
        wandb_run: Any,
    ) -> None:
        self.checkpoints_dir, self.tokenizer, self.wandb_run = checkpoints_dir, tokenizer, wandb_run
        self.labels, self.languages = list(labels), list(languages)
        self.json_files, self.run_config = json_files, run_config
        self.val: dict[str, Any] = {}
        self.val_truth: list[int] = []
        self.val_pred: list[int] = []

    def compute_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        """Full metrics kept for ``best/metrics.json``; flat scalars for the Trainer's logs and W&B."""
        self.val_truth = np.asarray(prediction.label_ids).tolist()
        self.val_pred = np.asarray(prediction.predictions).argmax(axis=1).tolist()
        self.val = classification_metrics(self.val_truth, self.val_pred, self.labels, self.languages)
        flat = {"accuracy": self.val["accuracy"], "macro_f1": self.val["macro_f1"]}
        for label, values in self.val["per_class"].items():
            flat |= {f"recall_{label}": values["recall"], f"f1_{label}": values["f1"]}
        return flat | {f"macro_f1_{k}": v for k, v in self.val["per_language_macro_f1"].items()}

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if state.is_world_process_zero and logs and "loss" in logs:
            log.info("step %d/%d: %s", state.global_step, state.max_steps, logs)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # trainer.max_steps can end a run mid-epoch: validate there too (epoch ends validate anyway)
        if state.global_step >= state.max_steps and not float(state.epoch).is_integer():
            control.should_evaluate = True

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        control.should_save = True

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        value = metrics["eval_macro_f1"]
        improved = state.best_metric is None or value > state.best_metric  # the Trainer updates it after us
        log.info(
            "epoch %.2f, step %d: val macro-F1 %.4f, accuracy %.4f, loss %.4f%s",
            state.epoch,
            state.global_step,
            value,
            metrics["eval_accuracy"],
            metrics["eval_loss"],
            " (best so far)" if improved else "",
        )
        if improved and state.is_world_process_zero:
            meta = {"epoch": math.ceil(state.epoch - 1e-9), "step": state.global_step, "val": self.val}
            path = ckpt.save_best(
                self.checkpoints_dir, kwargs["model"], self.tokenizer, metrics=meta, **self.json_files
            )
            log.info("saved best checkpoint (val macro-F1 %.4f) to %s", value, path)
            if self.wandb_run is not None:
                tracking.log_confusion(self.wandb_run, self.val_truth, self.val_pred, self.labels)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:  # written last: marks the Trainer checkpoint complete
            target = Path(args.output_dir) / f"checkpoint-{state.global_step}" / ckpt.RUN_CONFIG
            write_json_atomic(target, dict(self.run_config))


class ProfilerCallback(TrainerCallback):
    def __init__(self, trace_dir: Path) -> None:
        self.trace_dir = trace_dir
        self.profiler: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        log.info("profiling optimizer steps 2-4 into %s", self.trace_dir)
        self.profiler = profile(
            activities=activities,
            schedule=schedule(wait=1, warmup=1, active=3, repeat=1),
            on_trace_ready=tensorboard_trace_handler(str(self.trace_dir)),
            record_shapes=True,
        )
        self.profiler.start()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.profiler is not None:
            self.profiler.step()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            self.profiler = None
