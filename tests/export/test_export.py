"""Export + quantize of the tiny checkpoint: the bundles are real, portable ONNX models the server can run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from export.verify import torch_logits
from tests.fixtures.bundle import server_like_logits


def ops(bundle: Path) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load(str(bundle / "model.onnx")).graph.node)


def test_int8_bundle_is_quantized_and_smaller(tiny_bundle: Path, tiny_bundle_fp32: Path) -> None:
    int8_ops, fp32_ops = ops(tiny_bundle), ops(tiny_bundle_fp32)
    assert int8_ops["MatMulInteger"] + int8_ops["QAttention"] > 0
    assert fp32_ops["MatMulInteger"] == 0
    # ORT transformer fusions happened in the fp32 graph (and survive into the int8 one)
    assert fp32_ops["Attention"] > 0 and fp32_ops["SkipLayerNormalization"] > 0
    assert (tiny_bundle / "model.onnx").stat().st_size < (tiny_bundle_fp32 / "model.onnx").stat().st_size


def test_axes_are_dynamic(tiny_bundle: Path) -> None:
    graph = onnx.load(str(tiny_bundle / "model.onnx")).graph
    for tensor in graph.input:
        assert tensor.type.tensor_type.elem_type == onnx.TensorProto.INT64
        dims = tensor.type.tensor_type.shape.dim
        assert [bool(d.dim_param) for d in dims] == [True, True], tensor.name
    out_dims = graph.output[0].type.tensor_type.shape.dim
    assert out_dims[0].dim_param and out_dims[1].dim_value == 3


def test_fp32_bundle_reproduces_pytorch_from_raw_subject_and_body(
    tiny_bundle_fp32: Path, tiny_checkpoint: Path, sample_prepared: Any
) -> None:
    """Independent of the gate's code path: bundle-only inference on a mixed-length batch matches PyTorch."""
    val = sample_prepared.val.iloc[:12]
    onnx_out = server_like_logits(tiny_bundle_fp32, list(val["subject"]), list(val["body"]))
    manifest = json.loads((tiny_bundle_fp32 / "manifest.json").read_text())
    reference = torch_logits(
        Path(tiny_checkpoint), list(val["text"]), manifest["max_length"], batch_size=4
    ).logits
    assert onnx_out.shape == (12, 3)
    np.testing.assert_allclose(onnx_out, reference, atol=1e-3)
    assert (onnx_out.argmax(1) == reference.argmax(1)).all()


def test_int8_bundle_runs_and_stays_close_to_fp32(
    tiny_bundle: Path, tiny_bundle_fp32: Path, sample_prepared: Any
) -> None:
    val = sample_prepared.val
    int8 = server_like_logits(tiny_bundle, list(val["subject"]), list(val["body"]))
    fp32 = server_like_logits(tiny_bundle_fp32, list(val["subject"]), list(val["body"]))
    assert int8.shape == fp32.shape == (len(val), 3)
    assert np.isfinite(int8).all()
    # int8 noise is a fraction of the logits' own spread, not a different model
    assert np.abs(int8 - fp32).max() < 0.25 * np.abs(fp32).max() + 1e-3


def test_report_is_in_the_bundle(tiny_bundle: Path) -> None:
    report = (tiny_bundle / "report.md").read_text()
    assert (
        "Result: **PASSED WITH A LOOSENED GATE**" in report
    )  # the quality floor is waived for the tiny model
    assert "Not the production gate: quality floor waived (--allow-below-baseline)." in report
    assert "## Quality floor (test split, served model vs TF-IDF baseline)" in report
    assert "## What the int8 checks can detect at this n" in report
    assert "## Calibration (fitted on none" in report
    assert "fp32 vs torch max abs logit diff" in report
    assert "int8 vs fp32 argmax agreement: raw" in report


@pytest.mark.parametrize("batch", [1, 5])
def test_bundle_accepts_any_batch_size(tiny_bundle: Path, batch: int) -> None:
    out = server_like_logits(tiny_bundle, ["Printer"] * batch, ["It does not print anything at all"] * batch)
    assert out.shape == (batch, 3)
    np.testing.assert_allclose(out, np.repeat(out[:1], batch, axis=0), atol=1e-5)
