"""The export steps in order: checkpoint -> fp32 ONNX -> fusions -> int8 -> gate -> bundle (atomic)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export import artifacts, bundle, convert, quantize, verify
from export.checkpoint import DEFAULT_RUNS_ROOT, Checkpoint, find_latest_checkpoint, load_checkpoint
from export.errors import BundleError, DataError, GateFailedError

logger = logging.getLogger(__name__)

DEFAULT_BUNDLES_ROOT = Path("bundles")


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
    reduce_range: bool = True
    overwrite: bool = False
    batch_size: int = 16
    threads: int | None = None
    val_limit: int | None = None
    opset: int | None = None
    wandb_log: bool = False


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
    stats = data_dir / "stats.json"
    if ckpt.stats_sha256 and stats.is_file():
        actual = bundle.sha256_file(stats)
        if actual != ckpt.stats_sha256:
            logger.warning(
                "%s differs from the one the checkpoint was trained on (sha256 %s vs %s): "
                "the gate runs on other validation data than training saw",
                stats,
                actual[:12],
                ckpt.stats_sha256[:12],
            )


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
    if "agreement" in report.metrics:
        metrics["agreement"] = report.metrics["agreement"]
    metrics["torch"] = report.metrics["torch"]
    return metrics


def run_gate(
    ckpt: Checkpoint,
    val: verify.ValidationSet,
    tokenizer_path: Path,
    fp32_path: Path,
    int8_path: Path | None,
    options: ExportOptions,
) -> tuple[verify.GateReport, verify.TorchSide]:
    """Logits from PyTorch (training side) and ONNX (server side), then every check of the gate."""
    from training.data import build_text

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
        val = verify.load_validation(data_dir, ckpt.labels, options.val_limit)
        _warn_if_data_changed(data_dir, ckpt)

        fp32_path = convert.optimize_fp32(
            convert.export_fp32(ckpt.path, work / "raw", options.opset).parent, work / "fp32"
        )
        settings: quantize.QuantizationSettings | None = None
        int8_path: Path | None = None
        if options.quantize:
            isa = quantize.detect_isa() if options.isa == "auto" else options.isa
            settings = quantize.QuantizationSettings(
                isa=isa, per_channel=options.per_channel, reduce_range=options.reduce_range
            )
            int8_path = quantize.quantize_int8(fp32_path.parent, work / "int8", settings)

        staging = work / "bundle"
        staging.mkdir()
        bundle.write_serving_tokenizer(ckpt.path / "tokenizer.json", staging / bundle.TOKENIZER)
        report, torch_side = run_gate(ckpt, val, staging / bundle.TOKENIZER, fp32_path, int8_path, options)
        if not report.passed:
            raise GateFailedError(report)
        logger.info("verification gate passed (%d checks)", len(report.checks))

        final_model = int8_path or fp32_path
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
            "validation_data": {"dir": str(data_dir), "n": report.n_examples},
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
