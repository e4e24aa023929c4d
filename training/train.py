"""``train(cfg, run_dir)``: data -> model -> loop -> checkpoints -> evaluation, driven by the composed Hydra
config.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from training import checkpoint as ckpt
from training.batching import TokenizedDataset, encode_texts
from training.checks import check_config
from training.distributed import DistInfo, barrier, broadcast, cleanup, init_distributed
from training.errors import ConfigError
from training.loop import EvalSet, Trainer, TrainState, seed_everything
from training.models import load_model
from training.tracking import create_tracker

log = logging.getLogger(__name__)


def peak_rss_mib() -> float | None:
    """Peak resident memory of this process in MiB (None where the platform does not say)."""
    try:
        import resource  # POSIX only

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # macOS: bytes, Linux: KiB
    except ImportError:
        try:
            import psutil

            return float(psutil.Process().memory_info().peak_wset) / (1024 * 1024)  # Windows
        except (ImportError, AttributeError):
            return None


def _device(pref: str, info: DistInfo) -> torch.device:
    if pref == "cpu" or (pref == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA device is visible; use trainer=cpu")
    return torch.device("cuda", info.local_rank)


def _prepare_data(cfg: DictConfig, info: DistInfo) -> Any:
    from training.data import load_prepared, prepare  # heavy (pandas, pyarrow)

    if info.is_main:
        prepared = prepare(cfg.data)
    barrier(info)
    if not info.is_main:
        prepared = load_prepared(Path(str(cfg.data.output_dir)))
    return prepared


def _eval_set(frame: Any, tokenizer: Any, max_length: int) -> EvalSet:
    return EvalSet(
        input_ids=encode_texts(tokenizer, frame["text"].tolist(), max_length),
        label_ids=[int(x) for x in frame["label_id"].tolist()],
        languages=[str(x) for x in frame["language"].tolist()],
    )


def _copy_previous_run(state_path: Path, run_dir: Path) -> None:
    """Resuming another run's ``last`` in a new run dir: bring its ``best`` along."""
    source_run = state_path.parents[2]
    if source_run.resolve() == run_dir.resolve():
        return
    source_best = source_run / "checkpoints" / ckpt.BEST
    if source_best.is_dir() and not (run_dir / "checkpoints" / ckpt.BEST).exists():
        shutil.copytree(source_best, run_dir / "checkpoints" / ckpt.BEST)
    log.info("resuming %s in the new run dir %s", source_run, run_dir)


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train per ``cfg``; write checkpoints (and, with ``evaluate: true``, the evaluation report) under
    ``run_dir``.

    Returns the summary (``best_val_macro_f1`` is the value sweeps optimise).
    """
    check_config(cfg)
    info = init_distributed(str(cfg.trainer.device))
    try:
        return _train(cfg, run_dir, info)
    finally:
        cleanup(info)


def _train(cfg: DictConfig, run_dir: Path, info: DistInfo) -> dict[str, Any]:
    started = time.perf_counter()
    # Rows are tokenized before DataLoader workers fork: keep the Rust tokenizer from warning about it.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    seed_everything(int(cfg.seed))
    run_dir = Path(broadcast(info, str(run_dir)))
    checkpoints_dir = run_dir / "checkpoints"
    if info.is_main:
        checkpoints_dir.mkdir(parents=True, exist_ok=True)
        ckpt.recover(checkpoints_dir)

    prepared = _prepare_data(cfg, info)
    labels = list(prepared.labels)
    max_length = int(cfg.model.max_length)
    resume_path = broadcast(
        info, ckpt.find_resume_state(run_dir, cfg.trainer.get("resume", False)) if info.is_main else None
    )
    if cfg.trainer.get("resume") and resume_path is None:
        log.warning("trainer.resume is set but no checkpoints/last/state.pt was found: starting from scratch")
    tokenizer_dir = resume_path.parent / "tokenizer" if resume_path else None

    train_texts = prepared.train["text"].tolist()
    if info.is_main:
        loaded = load_model(cfg.model, labels, train_texts, tokenizer_dir)
        # All ranks use rank 0's tokenizer (``tiny`` trains its vocabulary): shared via last/tokenizer.
        ckpt.save_tokenizer_once(checkpoints_dir, loaded.tokenizer)
    barrier(info)
    if not info.is_main:
        loaded = load_model(cfg.model, labels, train_texts, checkpoints_dir / ckpt.LAST / "tokenizer")
    tokenizer = loaded.tokenizer
    train_set = TokenizedDataset(
        encode_texts(tokenizer, prepared.train["text"].tolist(), max_length),
        prepared.train["label_id"].tolist(),
    )
    val_set = _eval_set(prepared.val, tokenizer, max_length)
    log.info(
        "data: %d train / %d val / %d test rows, labels %s",
        len(train_set),
        len(prepared.val),
        len(prepared.test),
        labels,
    )

    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    resolved = {str(k): v for k, v in container.items()}
    tracker = create_tracker(cfg.logger, run_dir, resolved, info.is_main)
    stats_path = Path(prepared.output_dir) / "stats.json"
    recipe_json = {
        "text_recipe": dict(prepared.text_recipe),
        "max_length": max_length,
        "model_name": str(cfg.model.name),
        "pretrained": loaded.pretrained,
        "data": {
            "output_dir": str(prepared.output_dir),
            "stats_sha256": ckpt.sha256_file(stats_path) if stats_path.is_file() else None,
        },
    }
    labels_json = {"target": prepared.target, "labels": labels}

    def on_improved(state: TrainState, metrics: Mapping[str, Any]) -> None:
        path = ckpt.save_best(
            checkpoints_dir,
            trainer.model,
            tokenizer,
            labels_json=labels_json,
            metrics_json={"epoch": state.best_epoch, "step": state.best_step, "val": dict(metrics)},
            recipe_json=recipe_json,
        )
        log.info("saved best checkpoint (val macro-F1 %.4f) to %s", metrics["macro_f1"], path)

    def on_state(state: dict[str, Any]) -> None:
        state["config"] = resolved
        ckpt.save_last(checkpoints_dir, state)

    exit_code = 1
    try:  # the tracker is closed (with the exit code) whatever happens from here on
        trainer = Trainer(
            model=loaded.model,
            train_set=train_set,
            val_set=val_set,
            labels=labels,
            cfg=cfg.trainer,
            seed=int(cfg.seed),
            pad_token_id=int(tokenizer.pad_token_id),
            max_length=max_length,
            dist_info=info,
            device=_device(str(cfg.trainer.device), info),
            tracker=tracker,
            run_dir=run_dir,
            on_improved=on_improved,
            on_state=on_state,
        )
        if resume_path is not None:
            trainer.load_state_dict(ckpt.load_last(resume_path))
            if info.is_main:
                _copy_previous_run(resume_path, run_dir)
        state = trainer.fit()
        summary = _summarise(state, trainer, run_dir, started)
        if info.is_main:
            best_dir = checkpoints_dir / ckpt.BEST
            tracker.log_best_checkpoint(
                best_dir,
                f"{cfg.model.name}-{prepared.target}",
                {"val_macro_f1": state.best_metric, **recipe_json},
            )
            if cfg.get("evaluate", True):
                from training.evaluate import evaluate_checkpoint

                report = evaluate_checkpoint(
                    best_dir,
                    prepared,
                    run_dir / "metrics",
                    baseline=bool(cfg.get("baseline", True)),
                    batch_size=int(cfg.trainer.get("eval_batch_size", 64)),
                    device=trainer.device,
                    train_summary=summary,
                )
                summary["test_macro_f1"] = report["transformer"]["test"]["macro_f1"]
                if "baseline" in report:
                    summary["baseline_test_macro_f1"] = report["baseline"]["test"]["macro_f1"]
            tracker.log_summary(summary)
        exit_code = 0
    finally:
        tracker.finish(exit_code)
    return summary


def _summarise(state: TrainState, trainer: Trainer, run_dir: Path, started: float) -> dict[str, Any]:
    summary = {
        "best_val_macro_f1": state.best_metric,
        "best_epoch": state.best_epoch,
        "best_step": state.best_step,
        "global_step": state.global_step,
        "total_steps_planned": trainer.total_steps,
        "steps_per_epoch": trainer.steps_per_epoch,
        "epochs_completed": state.epoch,
        "stopped_early": state.stopped_early,
        "samples_seen": state.samples_seen,
        "train_seconds": round(state.train_seconds, 2),
        "train_samples_per_s": round(state.samples_seen / state.train_seconds, 2)
        if state.train_seconds
        else None,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mib": round(rss, 1) if (rss := peak_rss_mib()) is not None else None,
        "world_size": trainer.dist.world_size,
        "device": str(trainer.device),
    }
    if trainer.dist.is_main:
        ckpt.write_json_atomic(run_dir / "metrics" / "history.json", state.history)
        ckpt.write_json_atomic(run_dir / "metrics" / "train_summary.json", summary)
        log.info("training done: %s", json.dumps(summary))
    return summary
