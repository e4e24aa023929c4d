"""Checkpoint -> ONNX fp32 (optimum exporter) -> ORT graph optimisation (transformer fusions)."""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from pathlib import Path

from export.errors import ExportError

logger = logging.getLogger(__name__)

ONNX_NAME = "model.onnx"
TASK = "text-classification"


def export_fp32(checkpoint_dir: Path, out_dir: Path, opset: int | None = None) -> Path:
    """Export with optimum's exporter; batch and sequence axes stay dynamic. Returns the model.onnx path.

    The model is loaded here with the class it was trained as (``training.pooling.load_classifier``: a
    mean-pooled head is not the Auto class's) and traced by optimum's ``export`` with the ONNX config optimum
    keeps for its model type, so the graph is the function the PyTorch reference in ``export.verify``
    computes (``main_export`` would reload the checkpoint with the Auto class). optimum's own validation is
    skipped: the gate compares against PyTorch on the real validation split, which is stricter than its random
    dummy inputs.
    """
    from optimum.exporters.onnx import export
    from optimum.exporters.tasks import TasksManager
    from torch.jit import TracerWarning

    from training.errors import ModelLoadError
    from training.pooling import load_classifier

    try:
        model = load_classifier(checkpoint_dir, local_files_only=True).eval()
        onnx_config = TasksManager.get_exporter_config_constructor(
            "onnx", model_type=model.config.model_type, task=TASK, library_name="transformers"
        )(model.config)
    except (OSError, ValueError, KeyError, ModelLoadError) as exc:
        raise ExportError(f"could not load {checkpoint_dir} for the ONNX export: {exc}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    # transformers' mask helper makes a constant while tracing: harmless (the mask stays a graph input)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TracerWarning)
            export(model, onnx_config, out_dir / ONNX_NAME, opset or onnx_config.DEFAULT_ONNX_OPSET)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ExportError(f"ONNX export of {checkpoint_dir} failed: {exc}") from exc
    model.config.save_pretrained(out_dir)  # the ORT optimiser reads the model type from it
    path = out_dir / ONNX_NAME
    if not path.is_file():
        raise ExportError(f"ONNX export of {checkpoint_dir} produced no {ONNX_NAME} in {out_dir}")
    logger.info("exported fp32 ONNX: %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def optimize_fp32(onnx_dir: Path, out_dir: Path) -> Path:
    """ORT transformer fusions (Attention, SkipLayerNorm, BiasGelu, ...) at graph level 1, for CPU.

    Level 1 + the transformer-specific fusions only rewrite into standard ONNX and ``com.microsoft`` ops
    that the plain CPU execution provider implements; levels 2/99 would bake in provider- and layout-specific
    nodes, so the file would no longer be portable (the server's ORT session applies those online anyway).
    EmbedLayerNorm fusion stays off (optimum's default: it breaks dynamic quantization). Symbolic shape
    inference afterwards gives the contrib ops' outputs a type, which the int8 quantizer needs.
    """
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig

    config = OptimizationConfig(
        optimization_level=1,
        optimize_for_gpu=False,
        enable_transformers_specific_optimizations=True,
        enable_gelu_approximation=False,  # exact GELU: the gate allows 1e-3 logit difference
    )
    try:
        ORTOptimizer.from_pretrained(onnx_dir).optimize(config, out_dir, file_suffix=None)
    except (NotImplementedError, ValueError, RuntimeError) as exc:
        raise ExportError(f"ORT graph optimisation failed for {onnx_dir / ONNX_NAME}: {exc}") from exc
    path = out_dir / ONNX_NAME
    model = onnx.load(str(path))
    inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    onnx.save(inferred, str(path))
    ops = Counter(node.op_type for node in inferred.graph.node)
    logger.info("optimised fp32 ONNX: %d nodes, fused ops %s", sum(ops.values()), fused_ops(ops))
    return path


FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "LayerNormalization",
)


def fused_ops(ops: Counter[str]) -> dict[str, int]:
    return {op: n for op, n in ops.items() if op in FUSED_OPS}


def io_names(model_path: Path) -> tuple[list[str], list[str]]:
    """Load the model in a plain CPU session with every online optimisation off: proves it is portable.

    Returns (input names, output names).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise ExportError(f"{model_path} does not load in a plain CPU onnxruntime session: {exc}") from exc
    return [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
