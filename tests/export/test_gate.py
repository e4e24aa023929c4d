"""The gate at its production thresholds fails on deliberately damaged models, and then nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from export import GateFailedError, convert, pipeline, quantize
from export.onnx import EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_UNEXPECTED, main
from export.pipeline import ExportOptions, run_export
from tests.fixtures.bundle import TINY_MODEL_GATE, TINY_MODEL_GATE_ARGS


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
    """Production thresholds (``Thresholds()``); the quality floor waived as for every tiny-model bundle."""
    kw = {**TINY_MODEL_GATE, **kw}
    return ExportOptions(checkpoint=checkpoint, data=data_dir, output=output, threads=1, **kw)


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


def test_damaged_int8_model_is_rejected_at_production_thresholds(
    monkeypatch: pytest.MonkeyPatch,
    tiny_checkpoint: Path,
    sample_prepared: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """End to end through ``python -m export.onnx``'s main: default thresholds, int8 damaged -> exit 1."""
    real = quantize.quantize_int8

    def quantize_then_damage(fp32_dir: Path, out_dir: Path, settings: quantize.QuantizationSettings) -> Path:
        path = real(fp32_dir, out_dir, settings)
        rotate_logits(path)
        return path

    monkeypatch.setattr(pipeline.quantize, "quantize_int8", quantize_then_damage)
    output = tmp_path / "damaged-int8"
    argv = ["--checkpoint", str(tiny_checkpoint), "--data", str(sample_prepared.output_dir)]
    argv += ["--output", str(output), "--quantize", "--threads", "1", *TINY_MODEL_GATE_ARGS]
    assert main(argv) == EXIT_GATE_FAILED
    printed = capsys.readouterr().out
    assert "Result: **FAILED**" in printed
    # every int8 prediction moved one class on: both int8 checks fail on their own statistics ...
    assert "| int8 macro-F1 drop (points), overall |" in printed
    rows = {line.split(" | ")[0].strip("| "): line for line in printed.splitlines() if line.startswith("| ")}
    # n = 30 < 200: the F1 drop fails on its bootstrap lower bound, not on the point estimate alone
    assert "| FAIL |" in rows["int8 macro-F1 drop (points), overall"]
    assert "(lower bound)" in rows["int8 macro-F1 drop (points), overall"]
    # < 100 non-ties: the exact Clopper-Pearson bound of the flip rate fails it
    assert "| FAIL |" in rows["int8 vs fp32 non-tie argmax agreement"]
    assert "flip rate significantly above 0.01" in rows["int8 vs fp32 non-tie argmax agreement"]
    # ... while the fp32 side (the same checkpoint) still passes, at production thresholds
    assert "| ok |" in rows["fp32 vs torch max abs logit diff"]
    assert "| ok |" in rows["fp32 vs torch argmax mismatches"]
    assert "<= 0.001 |" in rows["fp32 vs torch max abs logit diff"]
    assert ">= 0.99 (from 100 non-ties" in rows["int8 vs fp32 non-tie argmax agreement"]
    assert "What the int8 checks can detect at this n" in printed
    assert not output.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging dir left either


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
    assert main([*argv, "--threads", "1", *TINY_MODEL_GATE_ARGS]) == EXIT_GATE_FAILED
    printed = capsys.readouterr().out
    assert "Result: **FAILED**" in printed
    assert "| fp32 vs torch max abs logit diff |" in printed and "| FAIL | exceeds the limit by" in printed
    assert not output.exists()


def test_an_unexpected_error_exits_3_never_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """1 means "the gate failed": a bug or a library failure inside the export must not look like one."""

    def broken(options: ExportOptions) -> None:
        raise RuntimeError("injected library failure")

    monkeypatch.setattr(pipeline, "run_export", broken)
    assert main(["--checkpoint", str(tmp_path)]) == EXIT_UNEXPECTED
    assert "unexpected error during export" in caplog.text and "injected library failure" in caplog.text


def test_an_existing_output_is_bad_input_exit_2(
    tiny_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The contract's BundleError (not an ExportError) is bad input too: exit 2, nothing touched."""
    output = tmp_path / "taken"
    output.mkdir()
    (output / "model.onnx").write_text("old")
    assert main(["--checkpoint", str(tiny_checkpoint), "--output", str(output)]) == EXIT_BAD_INPUT
    assert "already exists; pass --overwrite" in caplog.text
    assert (output / "model.onnx").read_text() == "old"


def test_quality_floor_compares_with_the_real_tfidf_baseline(sample_prepared: Any) -> None:
    """The floor on constructed served predictions against the real baseline fitted on the sample's train."""
    from export.checkpoint import Checkpoint
    from export.verify import load_prepared_data, split_set

    data_dir = Path(sample_prepared.output_dir)
    labels = list(sample_prepared.labels)
    prepared = load_prepared_data(data_dir, labels)
    splits = {name: split_set(prepared, name, data_dir) for name in ("val", "test")}
    ckpt = Checkpoint(Path("unused"), "priority", labels, {}, 64, "tiny", "")
    perfect = {name: s.y_true.copy() for name, s in splits.items()}
    constant = {name: np.zeros_like(s.y_true) for name, s in splits.items()}

    check, floor = pipeline.quality_floor(prepared, data_dir, perfect, splits, ckpt, ExportOptions())
    assert check.passed and floor["split"] == "test" and floor["model_macro_f1"] == 1.0
    assert 0.0 < floor["baseline_macro_f1"] < 1.0 and floor["n_train"] == len(sample_prepared.train)

    check, floor = pipeline.quality_floor(prepared, data_dir, constant, splits, ckpt, ExportOptions())
    assert not check.passed and floor["below_baseline"] is True
    assert f"vs TF-IDF {floor['baseline_macro_f1']:.4f}" in check.detail  # both numbers are reported
    assert f"served {floor['model_macro_f1']:.4f}" in check.detail

    waived = ExportOptions(allow_below_baseline=True)
    check, floor = pipeline.quality_floor(prepared, data_dir, constant, splits, ckpt, waived)
    assert check.passed and "waived by --allow-below-baseline" in check.detail and floor["waived"] is True
    assert pipeline.loosened(waived) == ["quality floor waived (--allow-below-baseline)"]
    assert pipeline.loosened(ExportOptions()) == []


def test_calibration_options_come_from_the_cli_then_the_recipe_then_the_default() -> None:
    from export.checkpoint import Checkpoint
    from export.errors import DataError

    def ckpt(recipe: dict[str, Any]) -> Checkpoint:
        return Checkpoint(Path("unused"), "priority", ["a", "b"], {}, 64, "tiny", "", recipe=recipe)

    plain, chosen = ckpt({}), ckpt({"calibration": {"tune_bias": False, "target_accuracy": 0.8}})
    assert pipeline.resolve_calibration_options(ExportOptions(), plain)[:2] == (pipeline.AUTO_TUNE_BIAS, 0.7)
    tune, target, mode = pipeline.resolve_calibration_options(ExportOptions(), chosen)
    assert (tune, target) == (False, 0.8) and "recipe.json calibration.tune_bias" in mode
    cli = ExportOptions(bias="on", review_target=0.9)
    assert pipeline.resolve_calibration_options(cli, chosen)[:2] == (True, 0.9)
    with pytest.raises(DataError, match="--review-target"):
        pipeline.resolve_calibration_options(ExportOptions(review_target=1.5), plain)
