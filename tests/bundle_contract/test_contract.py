"""The one bundle contract (bundle_contract): one reader, one BundleError, one text recipe for every stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import bundle_contract
from bundle_contract import BundleError, load_bundle, verify_bundle


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def _edit_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_every_stage_uses_the_same_error_class_and_recipe() -> None:
    import export
    import export.bundle
    import export.errors
    import monitoring.bundle
    import server.bundle
    import server.text
    import training.data
    import training.data.recipe

    assert export.BundleError is export.errors.BundleError is export.bundle.BundleError is BundleError
    assert server.bundle.BundleError is monitoring.bundle.BundleError is BundleError
    assert training.data.build_text is training.data.recipe.build_text is bundle_contract.build_text
    assert server.text.build_text is bundle_contract.build_text
    assert training.data.recipe.RECIPE_FIELDS == bundle_contract.KNOWN_FIELDS


def test_gate_failed_error_lives_with_the_gate() -> None:
    import export
    import export.errors
    import export.verify

    assert export.GateFailedError is export.verify.GateFailedError
    assert issubclass(export.GateFailedError, export.ExportError)
    assert not hasattr(export.errors, "GateFailedError")  # errors never imports back from the gate


def test_verify_bundle_returns_the_plain_manifest_of_a_bundle_the_server_reads(tiny_bundle: Path) -> None:
    bundle, raw = verify_bundle(tiny_bundle)
    assert raw == json.loads((tiny_bundle / "manifest.json").read_text())
    assert bundle.manifest == load_bundle(tiny_bundle).manifest
    assert set(bundle_contract.REQUIRED_KEYS) <= set(raw)


def test_writer_rules_refuse_what_the_server_would_still_read(bundle_copy: Path) -> None:
    """An unlisted file: the server's reader ignores it, the export's check (the writer's promise) not."""
    (bundle_copy / "notes.txt").write_text("hello")
    load_bundle(bundle_copy)
    with pytest.raises(BundleError, match=r"holds files its manifest does not list: notes\.txt"):
        verify_bundle(bundle_copy)


def test_the_export_check_applies_every_rule_of_the_server_reader(bundle_copy: Path) -> None:
    """One set of rules: a manifest the server refuses is refused by the export's verify_bundle too."""
    from export.bundle import verify_bundle as export_verify

    _edit_manifest(bundle_copy, calibration={"temperature": 0})
    for check in (load_bundle, export_verify):
        with pytest.raises(BundleError, match=r"calibration\.temperature must be a positive number"):
            check(bundle_copy)


def test_missing_writer_key_is_named(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    del manifest["versions"], manifest["created_at"]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    load_bundle(bundle_copy)  # the server does not need them
    with pytest.raises(BundleError, match=r"lacks versions, created_at; re-run `python -m export.onnx`"):
        verify_bundle(bundle_copy)


def test_tokenizer_must_leave_truncation_and_padding_to_the_server(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"truncation": {"max_length": 8}, "padding": None}))
    with pytest.raises(BundleError, match="has truncation enabled"):
        bundle_contract.check_serving_tokenizer(path)
    path.write_text("[1, 2]")
    with pytest.raises(BundleError, match="not a JSON object"):
        bundle_contract.check_serving_tokenizer(path)
    path.write_text(json.dumps({"truncation": None, "padding": None, "model": {}}))
    bundle_contract.check_serving_tokenizer(path)


def test_read_manifest_json_refuses_what_is_not_a_json_object(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("[]")
    with pytest.raises(BundleError, match="must hold a JSON object"):
        bundle_contract.read_manifest_json(path)
    path.write_text("{oops")
    with pytest.raises(BundleError, match="is not valid JSON"):
        bundle_contract.read_manifest_json(path)
    with pytest.raises(BundleError, match=r"is missing: this is not a complete bundle"):
        bundle_contract.read_manifest_json(tmp_path / "nope.json")


def test_a_recipe_the_server_cannot_apply_is_refused(bundle_copy: Path) -> None:
    """A strip step or recipe key unknown to this reader would silently change the model's input: refused."""
    recipe = json.loads((bundle_copy / "manifest.json").read_text())["text_recipe"]
    _edit_manifest(bundle_copy, text_recipe={**recipe, "strip": ["greeting", "emoji"]})
    with pytest.raises(
        BundleError, match=r"text_recipe\.strip names steps this server does not know: \['emoji'\]"
    ):
        load_bundle(bundle_copy)
    _edit_manifest(bundle_copy, text_recipe={**recipe, "lowercase": True})
    with pytest.raises(
        BundleError, match=r"does not match the bundle contract: Object contains unknown field"
    ):
        load_bundle(bundle_copy)
    _edit_manifest(bundle_copy, text_recipe={**recipe, "strip": ["greeting"]})
    assert load_bundle(bundle_copy, verify_checksums=False).manifest.text_recipe.strip == ("greeting",)
