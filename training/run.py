"""``python -m training.run [experiment=...] [overrides]``: compose the config, build data and model, fit
with ``transformers.Trainer``, evaluate the best checkpoint, return val macro-F1 (what sweeps optimise).

Under ``torchrun`` every rank runs this: the Trainer joins the process group (gloo on CPU, nccl on GPU);
ranks > 0 get no run dir or log file of their own (rank 0's run dir is shared with them), and LOCAL_RANK 0
of every node prepares the data into the node's own ``data.output_dir`` while the others wait. Errors a
user can fix (unknown model, missing data, a resume with another config) end the run with one line, exit 2.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("training.run")


def training_arguments(t: DictConfig, output_dir: Path, seed: int, report_to: list[str]) -> Any:
    import torch
    from transformers import TrainingArguments

    from training.errors import ConfigError

    cuda = str(t.device) != "cpu" and torch.cuda.is_available()
    if str(t.device) == "cuda" and not cuda:
        raise ConfigError("trainer.device=cuda but no CUDA device is visible; use trainer=cpu")
    if str(t.precision) != "fp32" and not cuda:
        log.warning("trainer.precision=%s needs CUDA; training in fp32 on the CPU", t.precision)
    save_every = int(t.get("save_every_n_steps") or 0)
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=int(t.batch_size),
        per_device_eval_batch_size=int(t.eval_batch_size),
        gradient_accumulation_steps=int(t.grad_accum_steps),
        learning_rate=float(t.lr),
        weight_decay=float(t.weight_decay),
        lr_scheduler_type="linear",
        warmup_ratio=float(t.warmup_ratio),
        warmup_steps=int(t.get("warmup_steps") or 0),
        max_grad_norm=float(t.get("max_grad_norm") or 0.0),
        num_train_epochs=int(t.max_epochs),
        max_steps=int(t.get("max_steps") or -1),
        eval_strategy="epoch",
        save_strategy="steps" if save_every else "epoch",
        save_steps=save_every or 500,
        save_total_limit=2,
        metric_for_best_model="macro_f1",
        restore_callback_states_from_checkpoint=True,
        logging_steps=max(int(t.log_every_n_steps), 1),
        report_to=report_to,
        disable_tqdm=not bool(t.progress_bar),
        group_by_length=bool(t.group_by_length),
        dataloader_num_workers=int(t.num_workers),
        seed=seed,
        use_cpu=not cuda,
        ddp_backend="gloo" if not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        bf16=cuda and str(t.precision) == "bf16",
        fp16=cuda and str(t.precision) == "fp16",
        run_name=output_dir.parents[1].name,
        remove_unused_columns=False,
    )


def _encode(
    tokenizer: Any, frame: Any, max_length: int, by_length: bool = False
) -> tuple[list[Any], list[str]]:
    """Rows ``{"input_ids", "label"}`` (unpadded) and their languages; ``by_length``: longest first."""
    from training.predict import encode_texts, longest_first

    ids = encode_texts(tokenizer, frame["text"].tolist(), max_length)
    order = longest_first(ids) if by_length else range(len(ids))
    labels, languages = frame["label_id"].tolist(), frame["language"].tolist()
    rows = [{"input_ids": ids[i], "label": int(labels[i])} for i in order]
    return rows, [str(languages[i]) for i in order]


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train per ``cfg`` into ``run_dir`` (checkpoints/, metrics/; with ``evaluate: true`` the evaluation
    report); return the summary (``best_val_macro_f1`` first)."""
    import torch
    import torch.distributed as dist
    from accelerate.utils import broadcast_object_list
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, PrinterCallback, set_seed

    from bundle_contract.lineage import split_hashes
    from training import checkpoint as ckpt
    from training import tracking
    from training.checks import check_config
    from training.data import prepare
    from training.models import load_model
    from training.trainer import ProfilerCallback, RunCallback, TicketTrainer, balanced_class_weights
    from training.utils import sha256_file, write_json_atomic

    started = time.perf_counter()
    check_config(cfg)
    warnings.filterwarnings("ignore", message="mtime may not be reliable")  # the Trainer then sorts by step
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # rows are tokenized before loader workers fork
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    t, seed = cfg.trainer, int(cfg.seed)
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    args = training_arguments(t, run_dir / "checkpoints" / ckpt.LAST, seed, [])
    rank, world = args.process_index, args.world_size  # joins the process group under torchrun
    is_main = rank == 0
    if world > 1:
        log.info("DDP: rank %d/%d (local %d), backend %s", rank, world, args.local_rank, dist.get_backend())
    run_dir = Path(broadcast_object_list([str(run_dir)])[0])  # rank 0's (a no-op outside DDP)
    checkpoints = run_dir / "checkpoints"
    args.output_dir = str(checkpoints / ckpt.LAST)
    resume = broadcast_object_list(
        [ckpt.find_resume_checkpoint(run_dir, t.get("resume")) if is_main else None]
    )[0]
    saved = ckpt.check_resume_config(resume, resolved) if resume else {}
    if t.get("resume") and resume is None:
        log.warning("trainer.resume is set but no complete checkpoint was found: starting from scratch")

    with args.main_process_first(local=True, desc="prepare data"):  # LOCAL_RANK 0 first, the others reuse
        prepared = prepare(cfg.data)
    labels, max_length = list(prepared.labels), int(cfg.model.max_length)
    set_seed(seed)
    # the run's tokenizer (tiny trains its vocabulary): rank 0 saves it, the other ranks and reruns load it
    run_tokenizer = checkpoints / ckpt.LAST / "tokenizer"
    with args.main_process_first(local=False, desc="build model"):
        tokenizer_dir = resume or (run_tokenizer if run_tokenizer.is_dir() or not is_main else None)
        loaded = load_model(cfg.model, labels, prepared.train["text"].tolist(), tokenizer_dir)
        if is_main and tokenizer_dir is None:
            loaded.tokenizer.save_pretrained(run_tokenizer)
    tokenizer = loaded.tokenizer
    train_rows, _ = _encode(tokenizer, prepared.train, max_length)
    val_rows, val_languages = _encode(tokenizer, prepared.val, max_length, by_length=True)
    log.info("data: %d train / %d val / %d test rows", len(train_rows), len(val_rows), len(prepared.test))
    run_id = saved.get("wandb_run_id")
    wandb_run = tracking.start_run(cfg.logger, run_dir, resolved, run_id) if is_main else None
    args.report_to = ["wandb"] if wandb_run is not None else []
    stats = Path(prepared.output_dir) / "stats.json"
    recipe = {
        "text_recipe": dict(prepared.text_recipe),
        "max_length": max_length,
        "model_name": str(cfg.model.name),
        "pretrained": loaded.pretrained,
        "pooling": str(cfg.model.get("pooling") or "cls"),
        "data": {
            "output_dir": str(prepared.output_dir),
            "stats_sha256": sha256_file(stats) if stats.is_file() else None,
            "split_sha256": split_hashes(Path(prepared.output_dir)),
            "data_hash": prepared.stats.get("data_hash"),
        },
    }
    run_config = {"config": resolved, "wandb_run_id": wandb_run.id if wandb_run is not None else run_id}
    json_files: dict[str, Any] = {"labels": {"target": prepared.target, "labels": labels}, "recipe": recipe}
    callback = RunCallback(checkpoints, tokenizer, labels, val_languages, json_files, run_config, wandb_run)
    callbacks: list[Any] = [callback]
    if t.get("early_stopping_patience") is not None:
        callbacks.append(EarlyStoppingCallback(int(t.early_stopping_patience)))
    if t.get("profile"):
        callbacks.append(ProfilerCallback(run_dir / "profiler"))
    if is_main:
        ckpt.recover(checkpoints)
    weights = None
    if t.get("class_weights") == "balanced":
        weights = balanced_class_weights(prepared.train["label_id"].tolist(), len(labels))
        log.info("class weights %s", dict(zip(labels, weights.tolist(), strict=True)))
    padding: dict[str, Any] = (
        {"padding": "max_length", "max_length": max_length} if t.padding == "max_length" else {}
    )
    trainer = TicketTrainer(
        model=loaded.model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=val_rows,
        data_collator=DataCollatorWithPadding(tokenizer, **padding),
        processing_class=tokenizer,
        compute_metrics=callback.compute_metrics,
        callbacks=callbacks,
        class_weights=weights,
        label_smoothing=float(t.label_smoothing),
        head_lr_multiplier=float(t.head_lr_multiplier),
    )
    trainer.remove_callback(PrinterCallback)  # RunCallback logs the same lines into run.log
    exit_code = 1
    try:
        if resume:
            log.info("resuming from %s", resume)
        output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        state = trainer.state
        batches = math.ceil(math.ceil(len(train_rows) / args.per_device_train_batch_size) / world)
        early = next(
            (c for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStoppingCallback)), None
        )
        summary: dict[str, Any] = {
            "best_val_macro_f1": state.best_metric,
            "best_step": state.best_global_step,
            "global_step": state.global_step,
            "total_steps_planned": state.max_steps,
            "steps_per_epoch": math.ceil(batches / args.gradient_accumulation_steps),
            "epochs_completed": math.floor((state.epoch or 0.0) + 1e-9),
            "stopped_early": bool(
                early and early.early_stopping_patience_counter >= early.early_stopping_patience
            ),
            "train_seconds": round(output.metrics["train_runtime"], 2),
            "train_samples_per_s": output.metrics["train_samples_per_second"],
            "wall_seconds": round(time.perf_counter() - started, 2),
            "peak_rss_mib": _peak_rss_mib(),
            "world_size": world,
            "device": str(args.device),
        }
        if is_main:
            write_json_atomic(run_dir / "metrics" / "history.json", _history(state.log_history))
            write_json_atomic(run_dir / "metrics" / "train_summary.json", summary)
            log.info("training done: %s", summary)
            if cfg.get("evaluate", True):
                from training.evaluate import evaluate_checkpoint

                report = evaluate_checkpoint(
                    checkpoints / ckpt.BEST,
                    prepared,
                    run_dir / "metrics",
                    baseline=bool(cfg.get("baseline", True)),
                    batch_size=int(t.eval_batch_size),
                    device=args.device,
                    train_summary=summary,
                )
                summary["test_macro_f1"] = report["transformer"]["test"]["macro_f1"]
                if "baseline" in report:
                    summary["baseline_test_macro_f1"] = report["baseline"]["test"]["macro_f1"]
            if wandb_run is not None:
                name = f"{cfg.model.name}-{prepared.target}"
                tracking.finish_run(wandb_run, cfg.logger, checkpoints / ckpt.BEST, name, summary)
        exit_code = 0
    finally:
        if exit_code and wandb_run is not None:
            wandb_run.finish(exit_code=exit_code)
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return summary


def _history(logged: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Loss and LR per logged step, val metrics per evaluation, from the Trainer's ``log_history``."""
    step_keys = {"step": "step", "epoch": "epoch", "loss": "loss", "lr": "learning_rate"}
    val_keys = ("macro_f1", "accuracy", "loss")
    return {
        "steps": [{k: e[key] for k, key in step_keys.items()} for e in logged if "loss" in e],
        "epochs": [
            {"epoch": round(e["epoch"], 2), "step": e["step"]}
            | {f"val_{k}": e[f"eval_{k}"] for k in val_keys}
            for e in logged
            if "eval_macro_f1" in e
        ],
    }


def _peak_rss_mib() -> float | None:
    try:
        import resource  # POSIX only: no figure (not a crash at the end of a run) elsewhere
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


@hydra.main(config_path="../configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    from training.checks import check_config  # no work at import time
    from training.data.errors import DataError
    from training.errors import TrainingError

    try:
        check_config(cfg)  # before torch/transformers are imported: a typo costs a second, not half a minute
        summary = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (TrainingError, DataError) as exc:
        log.error("%s", exc)
        sys.exit(2)
    return float(summary["best_val_macro_f1"])


def cli() -> None:
    if int(os.environ.get("RANK", "0")) > 0:  # rank 0 owns the run dir, .hydra and the log file
        sys.argv += ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled"]
        sys.argv += ["hydra/hydra_logging=disabled"]
    main()


if __name__ == "__main__":
    cli()
