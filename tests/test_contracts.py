"""Cross-stage contract tests (docs/contracts.md): every writer and its reader, held together.

Training, export and the server each keep their own code for the shared contracts (the server may not import
the other two), so these tests are what keeps the copies in step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.bundle import load_bundle
from server.engine import Engine
from server.text import build_text as serve_build_text
from training.data import PreparedData
from training.data import build_text as train_build_text

RECIPES: list[dict[str, Any]] = [
    {"fields": ["subject", "body"], "separator": "\n"},
    {"fields": ["body"], "separator": "\n"},
    {"fields": ["subject", "body"], "separator": " | "},
    {
        "fields": ["subject", "body"],
        "separator": "\n",
        "strip": ["markup", "placeholders", "greeting", "closing"],
    },
]
TICKETS: list[tuple[str | None, str | None]] = [
    ("VPN down", "Since this morning nobody can connect.\nPlease help!"),
    (None, "Body only"),
    ("", "  padded body  "),
    ("   ", "\n\nbody after blank subject\n"),
    ("Betreff: Rechnung", "Sehr geehrte Damen und Herren,\n\nmeine Rechnung <acc_num> ist falsch."),
    ("Subject only", ""),
    ("Ünïcødé ✓", "tabs\tand  double  spaces stay"),
]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: "+".join(r["fields"]) + repr(r["separator"]))
@pytest.mark.parametrize(("subject", "body"), TICKETS)
def test_text_recipe_is_the_same_in_training_and_serving(
    recipe: dict[str, Any], subject: str | None, body: str | None
) -> None:
    assert serve_build_text(subject, body, recipe) == train_build_text(subject, body, recipe)


def test_prepared_text_column_is_what_the_server_builds(sample_prepared: PreparedData) -> None:
    df = sample_prepared.val
    recipe = sample_prepared.text_recipe
    rebuilt = [serve_build_text(s, b, recipe) for s, b in zip(df["subject"], df["body"], strict=True)]
    assert rebuilt == list(df["text"])


def _read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.slow
def test_server_reads_what_export_writes(tiny_bundle: Path, tiny_checkpoint: Path) -> None:
    bundle = load_bundle(tiny_bundle)  # verifies every checksum of the manifest
    manifest = bundle.manifest
    labels = _read_json(tiny_checkpoint / "labels.json")
    recipe = _read_json(tiny_checkpoint / "recipe.json")
    assert list(manifest.labels) == labels["labels"]
    assert manifest.target == labels["target"]
    assert manifest.max_length == recipe["max_length"]
    served_text = serve_build_text("s", "b", manifest.text_recipe)
    assert served_text == train_build_text("s", "b", recipe["text_recipe"])
    raw = _read_json(tiny_bundle / "manifest.json")
    assert set(raw["files"]) >= {"model.onnx", "tokenizer.json"}
    assert raw["quantization"] is not None and raw["quantization"]["dtype"] == "int8"


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny_bundle", "tiny_bundle_fp32"])
def test_server_logits_equal_export_time_onnx_logits(
    which: str, request: pytest.FixtureRequest, sample_prepared: PreparedData
) -> None:
    from export.verify import encode_with_bundle_tokenizer, onnx_logits

    bundle_dir: Path = request.getfixturevalue(which)
    engine = Engine.load(load_bundle(bundle_dir))
    rows = sample_prepared.val.head(12)
    texts = [engine.build_text(s, b) for s, b in zip(rows["subject"], rows["body"], strict=True)]
    assert texts == list(rows["text"])

    served = np.concatenate([engine.infer(engine.tokenize([t])) for t in texts])
    encoded = encode_with_bundle_tokenizer(bundle_dir / "tokenizer.json", texts, engine.max_length)
    exported = onnx_logits(
        bundle_dir / "model.onnx", encoded, engine.manifest.pad_token_id, batch_size=1, threads=1
    )
    np.testing.assert_allclose(served, exported, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_serving_tokenizer_matches_the_training_tokenizer(
    tiny_bundle: Path, tiny_checkpoint: Path, sample_prepared: PreparedData
) -> None:
    """The bundle's tokenizer.json, as the server configures it, yields the ids the model was trained on."""
    from transformers import AutoTokenizer

    engine = Engine.load(load_bundle(tiny_bundle))
    hf = AutoTokenizer.from_pretrained(tiny_checkpoint)
    texts = [*sample_prepared.val["text"].head(20), "x " * 2000]  # the last one is truncated
    served = engine.tokenize(texts)
    trained = hf(texts, truncation=True, max_length=engine.max_length)["input_ids"]
    assert [e.ids for e in served] == trained
    assert served[-1].truncated
    # a truncated input always fills the window; a shorter one is never flagged
    assert all(len(t) == engine.max_length for e, t in zip(served, trained, strict=True) if e.truncated)
    assert not any(e.truncated for e, t in zip(served, trained, strict=True) if len(t) < engine.max_length)


def test_bundle_contract_package_is_torch_free() -> None:
    """Export, server and monitoring share ``bundle_contract``: it must import without the training stack."""
    import subprocess
    import sys

    probe = (
        "import json, sys, bundle_contract; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not loaded & {"torch", "transformers", "onnxruntime", "tokenizers", "training", "export", "server"}


def test_manifest_calibration_and_review_are_validated(tiny_bundle: Path, tmp_path: Path) -> None:
    import shutil

    from bundle_contract import BundleError

    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "b"))
    manifest = json.loads((copy / "manifest.json").read_text())
    good = {
        **manifest,
        "calibration": {"temperature": 1.3, "bias": [0.1, 0.0, -0.1]},
        "review": {"threshold": 0.6},
    }
    (copy / "manifest.json").write_text(json.dumps(good))
    loaded = load_bundle(copy).manifest
    assert loaded.calibration is not None and loaded.calibration.temperature == 1.3
    assert loaded.review is not None and loaded.review.threshold == 0.6
    for bad, fragment in [
        ({"calibration": {"temperature": 0}}, "calibration.temperature must be a positive number"),
        (
            {"calibration": {"temperature": 1.0, "bias": [0.0]}},
            "calibration.bias must have one finite number",
        ),
        ({"review": {"threshold": 1.5}}, "review.threshold must be between 0 and 1"),
    ]:
        (copy / "manifest.json").write_text(json.dumps({**manifest, **bad}))
        with pytest.raises(BundleError, match=fragment):
            load_bundle(copy)
