"""The bundle reader accepts the export's bundle and refuses damaged ones with messages saying what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.bundle import BundleError, load_bundle


def _edit_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_reads_the_export_bundle(bundle_dir: Path) -> None:
    raw = json.loads((bundle_dir / "manifest.json").read_text())
    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    assert m.model_version == raw["model_version"]
    assert m.labels == raw["labels"]
    assert m.max_length == raw["max_length"]
    assert list(m.text_recipe.fields) == raw["text_recipe"]["fields"]
    assert m.text_recipe.separator == raw["text_recipe"]["separator"]
    assert bundle.model_path.is_file() and bundle.tokenizer_path.is_file()
    assert set(m.files) >= {"model.onnx", "tokenizer.json"}


def test_unknown_manifest_keys_are_ignored(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, some_future_key={"x": 1})
    assert load_bundle(bundle_copy).manifest.model_version


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist or is not a directory; set MODEL_DIR"):
        load_bundle(tmp_path / "nope")


def test_missing_manifest(bundle_copy: Path) -> None:
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"manifest.json is missing.*re-run `python -m export.onnx`"):
        load_bundle(bundle_copy)


def test_manifest_not_json(bundle_copy: Path) -> None:
    (bundle_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="is not valid JSON"):
        load_bundle(bundle_copy)


def test_manifest_missing_key(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    del manifest["labels"]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"does not match the bundle contract.*labels"):
        load_bundle(bundle_copy)


def test_wrong_schema_version(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, schema_version=99)
    with pytest.raises(BundleError, match="schema_version 99, this server reads version 1"):
        load_bundle(bundle_copy)


def test_inconsistent_manifest(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, labels=["a"], text_recipe={"fields": ["title"], "separator": "\n"})
    with pytest.raises(BundleError) as info:
        load_bundle(bundle_copy)
    assert "labels must be at least two distinct names" in str(info.value)
    assert "text_recipe.fields must be a non-empty subset" in str(info.value)


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json"])
def test_missing_file(bundle_copy: Path, name: str) -> None:
    (bundle_copy / name).unlink()
    with pytest.raises(BundleError, match=rf"{name} is missing \(listed in manifest.json\); re-run"):
        load_bundle(bundle_copy)


def test_checksum_mismatch(bundle_copy: Path) -> None:
    model = bundle_copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    model.write_bytes(bytes(data))
    with pytest.raises(
        BundleError, match=r"model.onnx checksum mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}"
    ):
        load_bundle(bundle_copy)


def test_truncated_file(bundle_copy: Path) -> None:
    tokenizer = bundle_copy / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes()[:-10])
    with pytest.raises(BundleError, match="truncated or was changed after export"):
        load_bundle(bundle_copy)


def test_required_file_not_listed(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    del manifest["files"]["tokenizer.json"]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"does not list tokenizer\.json under `files`"):
        load_bundle(bundle_copy)
