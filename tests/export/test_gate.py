"""The gate fails on deliberately damaged models, and then nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from export import convert, pipeline, quantize
from export.errors import GateFailedError
from export.onnx import EXIT_GATE_FAILED, main
from export.pipeline import ExportOptions, run_export
from export.verify import Thresholds
from tests.fixtures.bundle import TINY_MODEL_THRESHOLDS


def perturb_weights(model_path: Path, scale: float = 0.05) -> None:
    """Add seeded noise to every float weight matrix: the model still runs but no longer is the checkpoint."""
    model = onnx.load(str(model_path))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.ndim == 2:
            noisy = (array + rng.normal(0, scale, array.shape)).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    onnx.save(model, str(model_path))


def rotate_logits(model_path: Path) -> None:
    """Damage the int8 model's head: class i's logit moves to class i+1, so every prediction changes."""
    model = onnx.load(str(model_path))
    graph = model.graph
    out = graph.output[0].name
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == out:
                node.output[i] = "logits_before_damage"
    graph.initializer.append(numpy_helper.from_array(np.array([2, 0, 1], dtype=np.int64), "damage_order"))
    graph.node.append(helper.make_node("Gather", ["logits_before_damage", "damage_order"], [out], axis=1))
    onnx.save(model, str(model_path))


def options(checkpoint: Path, data_dir: Path, output: Path, **kw: Any) -> ExportOptions:
    thresholds = kw.pop("thresholds", Thresholds(**TINY_MODEL_THRESHOLDS))
    return ExportOptions(
        checkpoint=checkpoint, data=data_dir, output=output, threads=1, thresholds=thresholds, **kw
    )


@pytest.fixture
def damaged_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    real = convert.optimize_fp32

    def optimize_then_damage(onnx_dir: Path, out_dir: Path) -> Path:
        path = real(onnx_dir, out_dir)
        perturb_weights(path)
        return path

    monkeypatch.setattr(pipeline.convert, "optimize_fp32", optimize_then_damage)


def test_perturbed_fp32_model_fails_the_torch_check(
    damaged_fp32: None, tiny_checkpoint: Path, sample_prepared: Any, tmp_path: Path
) -> None:
    output = tmp_path / "bundles" / "damaged"
    with pytest.raises(GateFailedError) as info:
        run_export(options(Path(tiny_checkpoint), Path(sample_prepared.output_dir), output))
    failed = {c.name: c for c in info.value.report.failed_checks()}
    assert "fp32 vs torch max abs logit diff" in failed
    diff = failed["fp32 vs torch max abs logit diff"].value
    assert diff is not None and diff > 1e-3
    assert "fp32 vs torch max abs logit diff" in str(info.value)
    assert not output.exists()
    assert list(output.parent.iterdir()) == []  # the staging dir is cleaned up too


def test_damaged_int8_model_fails_the_agreement_check(
    monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path, sample_prepared: Any, tmp_path: Path
) -> None:
    real = quantize.quantize_int8

    def quantize_then_damage(fp32_dir: Path, out_dir: Path, settings: quantize.QuantizationSettings) -> Path:
        path = real(fp32_dir, out_dir, settings)
        rotate_logits(path)
        return path

    monkeypatch.setattr(pipeline.quantize, "quantize_int8", quantize_then_damage)
    # Production agreement threshold; tie_margin 0 so the tiny model's low-margin predictions all count.
    thresholds = Thresholds(tie_margin=0.0, max_f1_drop_points=100.0)
    output = tmp_path / "damaged-int8"
    with pytest.raises(GateFailedError) as info:
        run_export(
            options(
                Path(tiny_checkpoint),
                Path(sample_prepared.output_dir),
                output,
                quantize=True,
                thresholds=thresholds,
            )
        )
    failed = {c.name: c for c in info.value.report.failed_checks()}
    assert set(failed) == {"int8 vs fp32 non-tie argmax agreement"}  # the fp32 checks still pass
    # every int8 prediction moved one class on; only examples int8 had already flipped may land back on fp32's
    agreement = failed["int8 vs fp32 non-tie argmax agreement"].value
    assert agreement is not None and agreement < 0.5
    assert not output.exists()


def test_cli_prints_the_failed_report_and_exits_1(
    damaged_fp32: None,
    tiny_checkpoint: Path,
    sample_prepared: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "cli-damaged"
    argv = [
        "--checkpoint",
        str(tiny_checkpoint),
        "--data",
        str(sample_prepared.output_dir),
        "--output",
        str(output),
    ]
    assert main([*argv, "--threads", "1"]) == EXIT_GATE_FAILED
    printed = capsys.readouterr().out
    assert "Result: **FAILED**" in printed
    assert "| fp32 vs torch max abs logit diff |" in printed and "| FAIL | exceeds the limit by" in printed
    assert not output.exists()
