"""The export steps in order: checkpoint -> fp32 ONNX -> fusions -> int8 -> gate -> calibration -> quality
floor -> bundle (atomic)."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bundle_contract import build_text  # the server's text recipe (contracts section 1)
from bundle_contract.lineage import changed_data
from export import artifacts, bundle, convert, quantize, verify
from export.checkpoint import DEFAULT_RUNS_ROOT, Checkpoint, find_latest_checkpoint, load_checkpoint
from export.errors import BundleError, DataError
from export.verify import GateFailedError

logger = logging.getLogger(__name__)

DEFAULT_BUNDLES_ROOT = Path("bundles")
#: ``--bias auto`` without a ``calibration.tune_bias`` in the checkpoint's recipe.json: tune the per-class
#: decision bias on validation (True) or fit the temperature only (False). Measured (docs/quality.md): a bias
#: fitted on the val split lowered test macro-F1 on both yardsticks (cross-file 0.369 -> 0.333, grouped
#: 0.422 -> 0.411), while the temperature alone cut ECE to 0.02-0.03 without moving a decision: off.
AUTO_TUNE_BIAS = False
BIAS_CHOICES = ("auto", "on", "off")
#: The server runs one ticket per ONNX call on CPU (MAX_BATCH_SIZE=1): dynamic int8 quantizes activations per
#: call, so batch-1 logits are what /predict answers. Calibration and the quality floor use these.
SERVED_BATCH_SIZE = 1
QUALITY_FLOOR_CHECK = "quality floor: served macro-F1 vs TF-IDF baseline"


@dataclass
class ExportOptions:
    checkpoint: Path | None = None
    wandb_artifact: str | None = None
    quantize: bool = False
    output: Path | None = None
    bundles_root: Path = DEFAULT_BUNDLES_ROOT
    runs_root: Path = DEFAULT_RUNS_ROOT
    data: Path | None = None
    thresholds: verify.Thresholds = field(default_factory=verify.Thresholds)
    isa: str = "auto"
    per_channel: bool = True
    reduce_range: bool | None = None  # None: from the CPU (quantize.default_reduce_range)
    overwrite: bool = False
    batch_size: int = 16
    threads: int | None = None
    val_limit: int | None = None
    opset: int | None = None
    wandb_log: bool = False
    calibrate: bool = True
    bias: str = "auto"  # auto (recipe.json calibration.tune_bias, else AUTO_TUNE_BIAS) | on | off
    review_target: float | None = None  # None: recipe.json calibration.target_accuracy, else 0.70
    allow_below_baseline: bool = False
    served_batch_size: int = SERVED_BATCH_SIZE


@dataclass
class ExportResult:
    bundle_dir: Path
    manifest: dict[str, Any]
    report: verify.GateReport


def resolve_local_checkpoint(options: ExportOptions) -> Checkpoint | None:
    """Validate a local checkpoint early (cheap, before torch loads); None when it comes from W&B."""
    if options.wandb_artifact:
        if options.checkpoint is not None:
            raise DataError("pass either --checkpoint or --wandb-artifact, not both")
        artifacts.parse_artifact_spec(options.wandb_artifact)
        return None
    path = options.checkpoint if options.checkpoint is not None else find_latest_checkpoint(options.runs_root)
    return load_checkpoint(path)


def resolve_data_dir(options: ExportOptions, ckpt: Checkpoint) -> Path:
    if options.data is not None:
        return options.data
    if ckpt.data_dir is None:
        raise DataError(
            f"{ckpt.path / 'recipe.json'} names no data.output_dir; pass --data DIR (a prepared-data dir)"
        )
    return ckpt.data_dir


def _warn_if_data_changed(data_dir: Path, ckpt: Checkpoint) -> None:
    why = changed_data(ckpt.recipe.get("data") or {}, data_dir)
    if why is not None:
        logger.warning(
            "%s is not the prepared data the checkpoint was trained on (%s): the gate runs on other "
            "validation data than training saw",
            data_dir,
            why,
        )


def _data_hash(data_dir: Path) -> str | None:
    """The prepared data's hash (stats.json), which the drift report checks its held-out reference against."""
    stats = data_dir / "stats.json"
    if not stats.is_file():
        return None
    value = json.loads(stats.read_text(encoding="utf-8")).get("data_hash")
    return str(value) if value else None


def _manifest_metrics(report: verify.GateReport) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for name in ("fp32", "int8"):
        m = report.metrics.get(name)
        if m:
            metrics[name] = {
                "macro_f1": m["macro_f1"],
                "accuracy": m["accuracy"],
                "n": m["n"],
                "per_language_macro_f1": {k: v["macro_f1"] for k, v in m["per_language"].items()},
            }
    for key in ("agreement", "f1_drop", "quality_floor", "calibration"):
        if key in report.metrics:
            metrics[key] = report.metrics[key]
    metrics["torch"] = report.metrics["torch"]
    return metrics


def resolve_calibration_options(options: ExportOptions, ckpt: Checkpoint) -> tuple[bool, float, str]:
    """(tune_bias, target_accuracy, how chosen): the CLI, else recipe.json ``calibration``, else defaults.

    recipe.json may carry ``"calibration": {"tune_bias": true|false, "target_accuracy": 0.7}`` (the training
    config's choice, also what ``training.evaluate`` reads).
    """
    from quality.calibration import DEFAULT_TARGET_ACCURACY

    if options.bias not in BIAS_CHOICES:
        raise DataError(f"--bias must be one of {', '.join(BIAS_CHOICES)}, got {options.bias!r}")
    recipe = ckpt.recipe.get("calibration") or {}
    if not isinstance(recipe, dict):
        recipe = {}
    if options.bias != "auto":
        tune_bias, why = options.bias == "on", f"--bias {options.bias}"
    elif isinstance(recipe.get("tune_bias"), bool):
        tune_bias, why = bool(recipe["tune_bias"]), "recipe.json calibration.tune_bias"
    else:
        tune_bias, why = AUTO_TUNE_BIAS, "--bias auto default"
    target = options.review_target
    if target is None:
        target = float(recipe.get("target_accuracy", DEFAULT_TARGET_ACCURACY))
    if not 0.0 < target <= 1.0:
        raise DataError(f"--review-target must be in (0, 1], got {target}")
    mode = ("bias + temperature" if tune_bias else "temperature only") + f" ({why})"
    return tune_bias, target, mode


def served_logits(
    model_path: Path,
    tokenizer_path: Path,
    split: verify.ValidationSet,
    ckpt: Checkpoint,
    pad_token_id: int,
    options: ExportOptions,
) -> np.ndarray:
    """The shipped model's raw logits on a split, tokenized and batched as the server does."""
    texts = [build_text(s, b, ckpt.text_recipe) for s, b in zip(split.subjects, split.bodies, strict=True)]
    if not texts:
        return np.zeros((0, len(ckpt.labels)), dtype=np.float32)
    encoded = verify.encode_with_bundle_tokenizer(tokenizer_path, texts, ckpt.max_length)
    return verify.onnx_logits(model_path, encoded, pad_token_id, options.served_batch_size, options.threads)


def calibrate(
    val_logits: np.ndarray,
    val: verify.ValidationSet,
    test_logits: np.ndarray,
    test: verify.ValidationSet,
    ckpt: Checkpoint,
    options: ExportOptions,
) -> tuple[Any, dict[str, Any]]:
    """Fit (or, with ``--no-calibrate``, write the identity) on the served val logits; report val and test."""
    from quality.calibration import Calibration, calibration_report, fit_calibration

    tune_bias, target, mode = resolve_calibration_options(options, ckpt)
    if options.calibrate:
        calibration = fit_calibration(
            val_logits, val.y_true, tune_bias=tune_bias, target_accuracy=target, fitted_on="val"
        )
    else:
        calibration = Calibration(
            temperature=1.0, bias=[0.0] * len(ckpt.labels), target_accuracy=target, fitted_on="none", n=0
        )
        mode = "off (--no-calibrate): temperature 1, bias 0, no review band"
    splits = {}
    for name, logits, data in (("val", val_logits, val), ("test", test_logits, test)):
        if len(data.y_true):
            splits[name] = {
                "n": len(data.y_true),
                **calibration_report(logits, data.y_true, calibration, target),
            }
    summary = {
        "temperature": calibration.temperature,
        "bias": list(calibration.bias),
        "review_threshold": calibration.review_threshold,
        "target_accuracy": target,
        "fitted_on": calibration.fitted_on,
        "n": calibration.n,
        "mode": mode,
        "batch_size": options.served_batch_size,
        "splits": splits,
    }
    logger.info(
        "calibration (%s): temperature %.3f, bias %s, review threshold %s",
        mode,
        calibration.temperature,
        [round(b, 2) for b in calibration.bias],
        calibration.review_threshold,
    )
    return calibration, summary


def quality_floor(
    prepared: Any,
    data_dir: Path,
    served_preds: dict[str, np.ndarray],
    splits: dict[str, verify.ValidationSet],
    ckpt: Checkpoint,
    options: ExportOptions,
) -> tuple[verify.Check, dict[str, Any]]:
    """The served model's test macro-F1 (calibrated decision) against the TF-IDF baseline fitted on train."""
    from quality.baseline import build_baseline

    name = "test" if len(splits["test"].y_true) else "val"
    note = ""
    if name == "val":
        note = (
            f"{data_dir} has no test split: the quality floor is measured on val (the split calibrated on)."
        )
        logger.warning("%s", note)
    split = splits[name]
    train = verify.split_set(prepared, "train", data_dir)
    if not len(train.y_true):
        raise DataError(
            f"the train split in {data_dir} is empty: the quality floor needs it for the baseline"
        )
    baseline = build_baseline()
    baseline.fit(train.texts, train.y_true)
    baseline_pred = np.asarray(baseline.predict(split.texts))
    k = len(ckpt.labels)
    model_m = verify.classification_metrics(split.y_true, served_preds[name], split.languages, k)
    base_m = verify.classification_metrics(split.y_true, baseline_pred, split.languages, k)
    model_f1, base_f1 = model_m["macro_f1"], base_m["macro_f1"]
    below = model_f1 < base_f1
    detail = (
        f"{name} n={len(split.y_true)}: served {model_f1:.4f} vs TF-IDF {base_f1:.4f} "
        f"({(model_f1 - base_f1) * 100:+.2f} points)"
    )
    if below and options.allow_below_baseline:
        detail += "; below the baseline, waived by --allow-below-baseline"
    elif below:
        detail += "; below the baseline: pass --allow-below-baseline only for a sample/demo model"
    check = verify.Check(
        QUALITY_FLOOR_CHECK,
        not below or options.allow_below_baseline,
        model_f1,
        f">= TF-IDF baseline {base_f1:.4f}" + (" (waived)" if options.allow_below_baseline else ""),
        detail,
    )
    served = "int8" if options.quantize else "fp32"
    summary = {
        "split": name,
        "n": len(split.y_true),
        "n_train": len(train.y_true),
        "served": f"{served}, calibrated decision, batch {options.served_batch_size}",
        "model_macro_f1": model_f1,
        "model_accuracy": model_m["accuracy"],
        "baseline_macro_f1": base_f1,
        "baseline_accuracy": base_m["accuracy"],
        "model_per_language_macro_f1": {k2: v["macro_f1"] for k2, v in model_m["per_language"].items()},
        "baseline_per_language_macro_f1": {k2: v["macro_f1"] for k2, v in base_m["per_language"].items()},
        "below_baseline": below,
        "waived": options.allow_below_baseline,
        "note": note,
    }
    logger.info("quality floor: %s", detail)
    return check, summary


def loosened(options: ExportOptions) -> list[str]:
    """What makes this gate weaker than production (reported; the manifest's ``gate.production`` is False)."""
    out = verify.loosened_thresholds(options.thresholds)
    if options.allow_below_baseline:
        out.append("quality floor waived (--allow-below-baseline)")
    if options.val_limit is not None:
        out.append(f"only the first {options.val_limit} rows of each split (--val-limit)")
    return out


def run_gate(
    ckpt: Checkpoint,
    val: verify.ValidationSet,
    tokenizer_path: Path,
    fp32_path: Path,
    int8_path: Path | None,
    options: ExportOptions,
) -> tuple[verify.GateReport, verify.TorchSide]:
    """Logits from PyTorch (training side) and ONNX (server side), then every check of the gate."""
    torch_side = verify.torch_logits(ckpt.path, val.texts, ckpt.max_length, options.batch_size)
    server_texts = [build_text(s, b, ckpt.text_recipe) for s, b in zip(val.subjects, val.bodies, strict=True)]
    encoded = verify.encode_with_bundle_tokenizer(tokenizer_path, server_texts, ckpt.max_length)
    mismatches = verify.token_mismatches(torch_side.encoded, encoded)
    pad = torch_side.pad_token_id
    fp32 = verify.onnx_logits(fp32_path, encoded, pad, options.batch_size, options.threads)
    int8 = (
        verify.onnx_logits(int8_path, encoded, pad, options.batch_size, options.threads)
        if int8_path
        else None
    )
    report = verify.evaluate_gate(
        torch_logits=torch_side.logits,
        fp32_logits=fp32,
        int8_logits=int8,
        y_true=val.y_true,
        languages=val.languages,
        labels=ckpt.labels,
        thresholds=options.thresholds,
        token_mismatches=mismatches,
    )
    return report, torch_side


def run_export(options: ExportOptions) -> ExportResult:
    """Run every step; raise :class:`GateFailedError` (nothing written) when a check fails."""
    local = resolve_local_checkpoint(options)
    if options.output is not None and options.output.exists() and not options.overwrite:
        raise BundleError(f"{options.output} already exists; pass --overwrite or choose another --output")
    if not options.threads:
        return _run_export(options, local)
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    try:
        return _run_export(options, local)
    finally:
        torch.set_num_threads(previous)  # callers (tests, the benchmark) keep their own setting


def _run_export(options: ExportOptions, local: Checkpoint | None) -> ExportResult:
    parent = options.output.parent if options.output is not None else options.bundles_root
    with bundle.staging_dir(parent, "export") as work:
        if local is None:
            assert options.wandb_artifact is not None
            ckpt = load_checkpoint(artifacts.pull_model_artifact(options.wandb_artifact, work / "artifact"))
            source = f"wandb:{options.wandb_artifact}"
        else:
            ckpt, source = local, str(local.path)
        data_dir = resolve_data_dir(options, ckpt)
        prepared = verify.load_prepared_data(data_dir, ckpt.labels)
        val = verify.split_set(prepared, "val", data_dir, options.val_limit)
        if not len(val.y_true):
            raise DataError(f"the validation split in {data_dir} is empty; the gate needs examples")
        test = verify.split_set(prepared, "test", data_dir, options.val_limit)
        _warn_if_data_changed(data_dir, ckpt)
        resolve_calibration_options(options, ckpt)  # bad --bias/--review-target: fail before the slow steps

        fp32_path = convert.optimize_fp32(
            convert.export_fp32(ckpt.path, work / "raw", options.opset).parent, work / "fp32"
        )
        settings: quantize.QuantizationSettings | None = None
        int8_path: Path | None = None
        if options.quantize:
            settings = quantize.resolve_settings(options.isa, options.per_channel, options.reduce_range)
            int8_path = quantize.quantize_int8(fp32_path.parent, work / "int8", settings)

        staging = work / "bundle"
        staging.mkdir()
        bundle.write_serving_tokenizer(ckpt.path / "tokenizer.json", staging / bundle.TOKENIZER)
        report, torch_side = run_gate(ckpt, val, staging / bundle.TOKENIZER, fp32_path, int8_path, options)
        report.loosened = loosened(options)

        # The shipped model as the server runs it: calibration fitted on val, quality floor on test.
        final_model = int8_path or fp32_path
        logits = {
            name: served_logits(
                final_model, staging / bundle.TOKENIZER, data, ckpt, torch_side.pad_token_id, options
            )
            for name, data in (("val", val), ("test", test))
        }
        calibration, report.metrics["calibration"] = calibrate(
            logits["val"], val, logits["test"], test, ckpt, options
        )
        preds = {
            name: calibration.scores(z).argmax(axis=1) if len(z) else np.zeros(0, int)
            for name, z in logits.items()
        }
        floor_check, report.metrics["quality_floor"] = quality_floor(
            prepared, data_dir, preds, {"val": val, "test": test}, ckpt, options
        )
        report.checks.append(floor_check)
        if not report.passed:
            raise GateFailedError(report)
        if report.production:
            logger.info("verification gate passed (%d checks, production thresholds)", len(report.checks))
        else:
            logger.warning(
                "verification gate passed with a LOOSENED gate (%s): not a production bundle",
                "; ".join(report.loosened),
            )

        shutil.copyfile(final_model, staging / bundle.MODEL)
        inputs, outputs = convert.io_names(staging / bundle.MODEL)
        created = bundle.utc_now()
        model_version = bundle.make_model_version(
            ckpt.model_name, ckpt.target, created, bundle.sha256_file(staging / bundle.MODEL)
        )
        title = f"Export verification report: {model_version}"
        (staging / bundle.REPORT).write_text(report.to_markdown(title), encoding="utf-8")
        manifest: dict[str, Any] = {
            "schema_version": bundle.SCHEMA_VERSION,
            "model_version": model_version,
            "model_name": ckpt.model_name,
            "pretrained": ckpt.pretrained,
            "pooling": str(ckpt.recipe.get("pooling") or "cls"),  # informational: it is inside the graph
            "target": ckpt.target,
            "labels": ckpt.labels,
            "max_length": ckpt.max_length,
            "text_recipe": ckpt.text_recipe,
            "inputs": inputs,
            "output": "logits" if "logits" in outputs else outputs[0],
            "pad_token": torch_side.pad_token,
            "pad_token_id": torch_side.pad_token_id,
            "quantization": settings.to_manifest() if settings else None,
            "files": {},
            "metrics": _manifest_metrics(report),
            "gate": report.to_manifest(),
            **calibration.to_manifest(),
            "validation_data": {
                "dir": str(data_dir),
                "n": report.n_examples,
                "data_hash": _data_hash(data_dir),
            },
            "checkpoint_metrics": ckpt.metrics,
            "source_checkpoint": source,
            "versions": bundle.library_versions(),
            "created_at": bundle.iso_utc(created),
        }
        manifest = bundle.write_manifest(staging, manifest)
        bundle.verify_bundle(staging, load_model=True)
        final = options.output if options.output is not None else options.bundles_root / model_version
        bundle.publish(staging, final, overwrite=options.overwrite)

    if options.wandb_log:
        artifacts.log_bundle_artifact(final, manifest)
    return ExportResult(bundle_dir=final, manifest=manifest, report=report)
