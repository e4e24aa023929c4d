"""The bundle contract (docs/contracts.md section 4): manifest keys, checksum round trip, atomic publish."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from export.bundle import REQUIRED_KEYS, publish, sha256_file, staging_dir, verify_bundle
from export.errors import BundleError


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the session bundle, free to damage."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def test_manifest_follows_the_contract(tiny_bundle: Path) -> None:
    manifest = verify_bundle(tiny_bundle, load_model=True)
    assert set(REQUIRED_KEYS) <= set(manifest)
    assert manifest["schema_version"] == 1
    assert manifest["labels"] == ["low", "medium", "high"]
    assert manifest["target"] == "priority"
    assert manifest["inputs"][:2] == ["input_ids", "attention_mask"]
    assert manifest["output"] == "logits"
    quantization = manifest["quantization"]
    assert {k: quantization[k] for k in ("isa", "per_channel", "reduce_range", "mode", "dtype")} == {
        "isa": "avx2",
        "per_channel": True,
        "reduce_range": True,  # --isa avx2 (no VNNI): 7-bit weights, whatever CPU exports it
        "mode": "dynamic",
        "dtype": "int8",
    }
    assert quantization["reduce_range_source"] == "default: --isa avx2 (no VNNI): 7-bit weights"
    assert isinstance(quantization["cpu_flags"], list)
    assert set(manifest["metrics"]) >= {
        "fp32",
        "int8",
        "agreement",
        "f1_drop",
        "quality_floor",
        "calibration",
    }
    # built with the quality floor waived, and the manifest says so (tests/fixtures/bundle.py)
    gate = manifest["gate"]
    assert gate["passed"] is True and gate["production"] is False
    assert gate["loosened"] == ["quality floor waived (--allow-below-baseline)"]
    assert gate["thresholds"]["max_f1_drop_points"] == 1.0
    # calibrate=False: the identity, no review band
    assert manifest["calibration"] == {
        "temperature": 1.0,
        "bias": [0.0, 0.0, 0.0],
        "fitted_on": "none",
        "n": 0,
    }
    assert "review" not in manifest
    assert manifest["created_at"].endswith("Z")
    assert manifest["model_version"].endswith(manifest["files"]["model.onnx"]["sha256"][:8])
    assert {"torch", "transformers", "onnx", "onnxruntime", "optimum"} <= set(manifest["versions"])


def test_files_cover_every_file_but_the_manifest(tiny_bundle: Path) -> None:
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    on_disk = {p.name for p in tiny_bundle.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk == {"model.onnx", "tokenizer.json", "report.md"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(tiny_bundle / name)
        assert entry["bytes"] == (tiny_bundle / name).stat().st_size


def test_serving_tokenizer_has_truncation_and_padding_disabled(tiny_bundle: Path) -> None:
    tokenizer = json.loads((tiny_bundle / "tokenizer.json").read_text())
    assert tokenizer["truncation"] is None
    assert tokenizer["padding"] is None


def test_fp32_bundle_has_null_quantization(tiny_bundle_fp32: Path) -> None:
    manifest = verify_bundle(tiny_bundle_fp32, load_model=True)
    assert manifest["quantization"] is None
    assert "int8" not in manifest["metrics"]


def test_altered_model_is_refused_naming_the_file(bundle_copy: Path) -> None:
    model = bundle_copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.onnx checksum mismatch.*re-run `python -m export\.onnx`"):
        verify_bundle(bundle_copy)


def test_missing_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"tokenizer\.json is missing \(listed in manifest\.json\)"):
        verify_bundle(bundle_copy)


def test_unlisted_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match=r"does not list: notes\.txt"):
        verify_bundle(bundle_copy)


def test_tokenizer_with_truncation_is_refused(bundle_copy: Path) -> None:
    from tokenizers import Tokenizer

    from export.bundle import write_manifest

    tokenizer = Tokenizer.from_file(str(bundle_copy / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=8)
    tokenizer.save(str(bundle_copy / "tokenizer.json"))
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    write_manifest(bundle_copy, manifest)  # checksums now match: only the content rule can refuse it
    with pytest.raises(BundleError, match="truncation enabled"):
        verify_bundle(bundle_copy)


def test_incomplete_manifest_is_refused(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    del manifest["labels"]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="lacks labels"):
        verify_bundle(bundle_copy)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"manifest\.json is missing: this is not a complete bundle"):
        verify_bundle(tmp_path)


def test_publish_is_atomic_and_leaves_no_temp_dirs(tmp_path: Path) -> None:
    final = tmp_path / "bundles" / "v1"
    with staging_dir(final.parent, "export") as work:
        (work / "b").mkdir()
        (work / "b" / "model.onnx").write_text("new")
        publish(work / "b", final)
    assert (final / "model.onnx").read_text() == "new"
    assert [p.name for p in final.parent.iterdir()] == ["v1"]  # the staging dir is gone


def test_publish_refuses_to_clobber_without_overwrite(tmp_path: Path) -> None:
    final = tmp_path / "v1"
    final.mkdir()
    (final / "model.onnx").write_text("old")
    for overwrite, expected in ((False, "old"), (True, "new")):
        with staging_dir(tmp_path, "export") as work:
            (work / "model.onnx").write_text("new")
            if overwrite:
                publish(work, final, overwrite=True)
            else:
                with pytest.raises(BundleError, match="already exists"):
                    publish(work, final)
        assert (final / "model.onnx").read_text() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1"]


def test_manifest_names_the_hash_of_the_data_it_was_gated_on(tiny_bundle: Path, sample_prepared: Any) -> None:
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    stats = json.loads((Path(sample_prepared.output_dir) / "stats.json").read_text())
    assert manifest["validation_data"]["data_hash"] == stats["data_hash"]
