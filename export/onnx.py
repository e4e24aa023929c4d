"""``python -m export.onnx``: turn the best checkpoint into a verified serving bundle (docs/export.md).

Exit codes: 0 bundle written; 1 the verification gate failed (report printed, nothing written);
2 bad input (missing/invalid checkpoint or data, W&B offline, existing output without --overwrite);
3 an unexpected error (a bug or a library failure; traceback logged), never 1, which means "gate failed".
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from export.checkpoint import DEFAULT_RUNS_ROOT
from export.errors import BundleError, ExportError
from export.quantize import ISAS
from export.verify import GateFailedError

logger = logging.getLogger("export")

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT, EXIT_UNEXPECTED = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m export.onnx",
        description="Export a checkpoint to ONNX (+ int8), verify it against PyTorch on the validation "
        "split, and write a self-contained serving bundle (docs/contracts.md section 4).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--checkpoint",
        type=Path,
        help=f"a checkpoints/best dir (default: the newest {DEFAULT_RUNS_ROOT}/*/checkpoints/best)",
    )
    src.add_argument(
        "--wandb-artifact", metavar="NAME:ALIAS", help="pull a W&B model artifact, e.g. model:best"
    )
    p.add_argument(
        "--runs-root", type=Path, default=DEFAULT_RUNS_ROOT, help="where to look for the newest run"
    )
    p.add_argument(
        "--quantize", action="store_true", help="ship a dynamic int8 model (verified against fp32)"
    )
    p.add_argument("--output", type=Path, help="bundle dir (default: bundles/<model_version>)")
    p.add_argument("--bundles-root", type=Path, default=Path("bundles"), help="parent of the default output")
    p.add_argument("--overwrite", action="store_true", help="atomically replace an existing --output")
    p.add_argument(
        "--data",
        type=Path,
        help="prepared-data dir whose val.parquet the gate uses (default: recipe.json data.output_dir)",
    )
    p.add_argument(
        "--val-limit",
        type=int,
        help="gate on the first N val and test rows only (quick checks; a loosened gate)",
    )

    q = p.add_argument_group("quantization")
    q.add_argument("--isa", choices=("auto", *ISAS), default="auto", help="default: from /proc/cpuinfo flags")
    q.add_argument("--per-channel", dest="per_channel", action="store_true", default=True, help="(default)")
    q.add_argument("--per-tensor", dest="per_channel", action="store_false")
    q.add_argument(
        "--reduce-range",
        dest="reduce_range",
        action="store_true",
        default=None,
        help="7-bit weights (default: on only for a CPU without VNNI: avx2/avx512 lacking avx512_vnni, "
        "avx_vnni and amx_int8; with --isa, from that ISA)",
    )
    q.add_argument("--no-reduce-range", dest="reduce_range", action="store_false", help="full-range int8")

    g = p.add_argument_group("verification gate thresholds")
    g.add_argument("--max-logit-diff", type=float, default=1e-3, help="fp32 ONNX vs PyTorch (default 1e-3)")
    g.add_argument(
        "--max-f1-drop", type=float, default=1.0, help="int8 macro-F1 drop in points (default 1.0)"
    )
    g.add_argument(
        "--min-language-examples", type=int, default=50, help="gate a language from n examples (50)"
    )
    g.add_argument(
        "--tie-margin", type=float, default=0.1, help="fp32 top1-top2 probability for non-ties (0.1)"
    )
    g.add_argument("--min-agreement", type=float, default=0.99, help="int8/fp32 non-tie agreement (0.99)")
    g.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        help="one-sided level of the F1-drop bootstrap and the flip-rate Clopper-Pearson bound (0.95)",
    )
    g.add_argument(
        "--bootstrap-resamples", type=int, default=1000, help="paired bootstrap resamples (1000, seeded)"
    )
    g.add_argument(
        "--allow-below-baseline",
        action="store_true",
        help="write the bundle even when its test macro-F1 is below the TF-IDF baseline (sample/demo "
        "models only: the gate is then reported as loosened)",
    )

    c = p.add_argument_group("calibration (fitted on the served model's validation logits)")
    c.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="write temperature 1, bias 0 and no review band",
    )
    c.add_argument(
        "--bias",
        choices=("auto", "on", "off"),
        default="auto",
        help="tune a per-class decision bias for val macro-F1 (auto: recipe.json calibration.tune_bias, "
        "else export.pipeline.AUTO_TUNE_BIAS)",
    )
    c.add_argument("--no-bias", dest="bias", action="store_const", const="off", help="= --bias off")
    c.add_argument(
        "--review-target",
        type=float,
        help="accuracy the review band keeps above its threshold (default: recipe.json, else 0.70)",
    )

    r = p.add_argument_group("runtime")
    r.add_argument("--batch-size", type=int, default=16)
    r.add_argument("--threads", type=int, help="torch and ORT intra-op threads (default: library defaults)")
    r.add_argument("--opset", type=int, help="ONNX opset (default: optimum's choice)")
    r.add_argument("--wandb-log", action="store_true", help="log the bundle to W&B as an artifact")
    r.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code of one export; an unexpected error is 3 (a traceback would make Python exit 1, which here
    means "the gate failed")."""
    try:
        return _main(argv)
    except Exception:
        logger.exception("unexpected error during export (a bug or a library failure, not the gate)")
        return EXIT_UNEXPECTED


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    # Libraries (optimum, transformers, ORT's quantizer on the root logger) are chatty at INFO: WARNING for
    # them, INFO (or DEBUG with -v) for this package.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logger.setLevel(logging.DEBUG if args.verbose else logging.INFO)

    if not args.quantize and (args.isa != "auto" or not args.per_channel or args.reduce_range is not None):
        logger.warning("--isa/--per-tensor/--[no-]reduce-range have no effect without --quantize")

    # Imported here: the heavy libraries load only once the arguments parsed.
    from export.pipeline import ExportOptions, run_export
    from export.verify import Thresholds

    options = ExportOptions(
        checkpoint=args.checkpoint,
        wandb_artifact=args.wandb_artifact,
        quantize=args.quantize,
        output=args.output,
        bundles_root=args.bundles_root,
        runs_root=args.runs_root,
        data=args.data,
        thresholds=Thresholds(
            max_logit_diff=args.max_logit_diff,
            max_f1_drop_points=args.max_f1_drop,
            min_language_examples=args.min_language_examples,
            tie_margin=args.tie_margin,
            min_non_tie_agreement=args.min_agreement,
            confidence=args.confidence,
            bootstrap_resamples=args.bootstrap_resamples,
        ),
        isa=args.isa,
        per_channel=args.per_channel,
        reduce_range=args.reduce_range,
        overwrite=args.overwrite,
        batch_size=args.batch_size,
        threads=args.threads,
        val_limit=args.val_limit,
        opset=args.opset,
        wandb_log=args.wandb_log,
        calibrate=args.calibrate,
        bias=args.bias,
        review_target=args.review_target,
        allow_below_baseline=args.allow_below_baseline,
    )
    try:
        result = run_export(options)
    except GateFailedError as exc:
        sys.stdout.write(exc.report.to_markdown("Export verification report (FAILED)"))
        logger.error("%s", exc)
        return EXIT_GATE_FAILED
    except (ExportError, BundleError) as exc:
        logger.error("%s", exc)
        return EXIT_BAD_INPUT
    sys.stdout.write(
        result.report.to_markdown(f"Export verification report: {result.manifest['model_version']}")
    )
    logger.info("bundle ready: %s (model_version %s)", result.bundle_dir, result.manifest["model_version"])
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
