"""``python -m export.gpu``: a GPU serving bundle (fp16 or fp32) from a verified fp32 CPU bundle.

Dynamic int8 is a CPU format (MatMulInteger has no fast CUDA kernel), so a GPU bundle starts from the fp32
bundle that ``python -m export.onnx`` wrote and its gate verified against PyTorch. fp32 copies the model as it
is; fp16 converts weights and activations with ONNX Runtime's own converter, keeping int64 inputs and float32
logits (``keep_io_types``), so the server feeds and reads it exactly like the CPU bundle. The manifest gains
``"device": "cuda"`` and ``"precision"``; checksums are written afresh; the bundle is published atomically.

On a machine with onnxruntime-gpu and a GPU, ``--check`` compares the new model's logits on CUDA with the fp32
model's on CPU for the texts given and fails (exit 1) above ``--max-logit-diff``. Without a GPU the check is
skipped with a message (``benchmarks/serving/gpu_check.py`` is the prepared measurement for a GPU machine).

Exit codes: 0 written; 1 the parity check failed; 2 bad input; 3 an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bundle_contract import MANIFEST_FILE, MODEL_FILE, BundleError, load_bundle, pad_batch
from export.errors import ExportError

logger = logging.getLogger("export.gpu")

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_UNEXPECTED = 0, 1, 2, 3
_CHECK_TEXTS = [
    "Since this morning every card payment fails. Customers cannot pay.",
    "Bitte senden Sie mir die Rechnung vom letzten Monat erneut.",
    "¿Cómo puedo exportar mis datos a CSV?",
    "printer jam on floor two " * 40,
]


def convert_model(source: Path, dest: Path, precision: str) -> None:
    """Write ``dest`` as ``source`` in ``precision`` (``fp32``: a copy; ``fp16``: ORT's float16 converter)."""
    if precision == "fp32":
        shutil.copyfile(source, dest)
        return
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    # LayerNorm/Softmax-style ops stay in fp32 where the converter knows they lose range in fp16
    converted = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(dest))


def make_gpu_bundle(
    source_dir: Path, output: Path, precision: str, overwrite: bool = False
) -> dict[str, Any]:
    """Write the GPU bundle for the fp32 bundle ``source_dir`` to ``output``; return its manifest."""
    from export.bundle import publish, staging_dir, write_manifest

    source = load_bundle(source_dir)
    if source.manifest.quantization:
        raise BundleError(
            f"{source_dir} is an int8 bundle; a GPU bundle starts from the fp32 bundle "
            "(`python -m export.onnx` without --quantize)"
        )
    if source.manifest.device != "cpu":
        raise BundleError(f"{source_dir} is already a {source.manifest.device} bundle")
    manifest: dict[str, Any] = json.loads((source_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    with staging_dir(output.parent, output.name) as staging:
        convert_model(source.model_path, staging / MODEL_FILE, precision)
        for name in manifest["files"]:
            if name != MODEL_FILE:
                shutil.copyfile(source_dir / name, staging / name)
        manifest.update(
            device="cuda",
            precision=precision,
            quantization=None,
            model_version=f"{manifest['model_version']}-cuda-{precision}",
            source_model_version=manifest["model_version"],
        )
        written = write_manifest(staging, manifest)
        publish(staging, output, overwrite=overwrite)
    load_bundle(output)  # the server's reader accepts it
    return written


def check_parity(gpu_dir: Path, cpu_dir: Path, max_logit_diff: float) -> float | None:
    """Max |logit difference| CUDA (new bundle) vs CPU (fp32 source), or None when no GPU is available."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        logger.warning("no CUDAExecutionProvider here: parity check skipped (run it on a GPU machine)")
        return None
    bundle = load_bundle(cpu_dir)
    tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=bundle.manifest.max_length)
    encodings = tokenizer.encode_batch(_CHECK_TEXTS)
    feeds_all = pad_batch(
        [e.ids for e in encodings], [e.type_ids for e in encodings], bundle.manifest.pad_token_id
    )

    def run(model: Path, providers: list[str]) -> np.ndarray:
        session = ort.InferenceSession(str(model), providers=providers)
        feeds = {i.name: feeds_all[i.name] for i in session.get_inputs()}
        return np.asarray(session.run([bundle.manifest.output], feeds)[0], dtype=np.float32)

    gpu = run(gpu_dir / MODEL_FILE, ["CUDAExecutionProvider"])
    cpu = run(bundle.model_path, ["CPUExecutionProvider"])
    return float(np.abs(gpu - cpu).max())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True, help="the verified fp32 CPU bundle")
    p.add_argument("--output", type=Path, required=True, help="the GPU bundle dir to write")
    p.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--check", action="store_true", help="compare CUDA logits with CPU fp32 (needs a GPU)")
    p.add_argument("--max-logit-diff", type=float, default=0.05, help="parity limit for --check (fp16: 0.05)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        manifest = make_gpu_bundle(args.bundle, args.output, args.precision, args.overwrite)
        logger.info("GPU bundle written: %s (model_version %s)", args.output, manifest["model_version"])
        if args.check:
            diff = check_parity(args.output, args.bundle, args.max_logit_diff)
            if diff is not None:
                logger.info("max |logit diff| CUDA %s vs CPU fp32: %.5f", args.precision, diff)
                if diff > args.max_logit_diff:
                    logger.error("parity check failed: %.5f > %.5f", diff, args.max_logit_diff)
                    return EXIT_CHECK_FAILED
    except (BundleError, ExportError) as exc:
        logger.error("%s", exc)
        return EXIT_BAD_INPUT
    except Exception:
        logger.exception("unexpected error while writing the GPU bundle")
        return EXIT_UNEXPECTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
