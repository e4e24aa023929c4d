"""GPU bundles (``python -m export.gpu``) on a machine without a GPU: the server reads them, logs that CUDA is
unavailable and serves on CPU; micro-batching defaults follow the device actually used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.gpu import main as export_gpu_main
from export.gpu import make_gpu_bundle
from server.bundle import load_bundle
from server.engine import Engine

TEXTS = ["Since this morning every card payment fails.", "Bitte senden Sie mir die Rechnung erneut."]


def test_fp32_gpu_bundle_falls_back_to_cpu_with_the_same_logits(
    bundle_dir_fp32: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "gpu-fp32"
    manifest = make_gpu_bundle(bundle_dir_fp32, out, "fp32")
    assert manifest["device"] == "cuda" and manifest["precision"] == "fp32"
    assert manifest["model_version"].endswith("-cuda-fp32")
    gpu_bundle = load_bundle(out)  # checksums verified by the server's reader
    assert gpu_bundle.manifest.device == "cuda" and gpu_bundle.manifest.dtype == "fp32"
    engine = Engine.load(gpu_bundle)  # EXECUTION_PROVIDER=auto: CUDA wanted, none here
    assert engine.device == "cpu"
    assert "falling back to CPUExecutionProvider" in caplog.text
    cpu = Engine.load(load_bundle(bundle_dir_fp32))
    for text in TEXTS:
        np.testing.assert_allclose(
            engine.infer(engine.tokenize([text])), cpu.infer(cpu.tokenize([text])), atol=1e-6
        )


def test_fp16_gpu_bundle_and_cli_exit_codes(bundle_dir: Path, bundle_dir_fp32: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpu-fp16"
    assert export_gpu_main(["--bundle", str(bundle_dir_fp32), "--output", str(out), "--check"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["device"], manifest["precision"], manifest["quantization"]) == ("cuda", "fp16", None)
    assert load_bundle(out).manifest.dtype == "fp16"
    # smaller: fp16 halves the float initializers (the tiny model's graph itself is a fair share of the file)
    assert (out / "model.onnx").stat().st_size < 0.9 * (bundle_dir_fp32 / "model.onnx").stat().st_size
    # an int8 bundle is no source for a GPU bundle; an existing output needs --overwrite
    assert export_gpu_main(["--bundle", str(bundle_dir), "--output", str(tmp_path / "x")]) == 2
    assert export_gpu_main(["--bundle", str(bundle_dir_fp32), "--output", str(out)]) == 2
