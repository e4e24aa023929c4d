"""The engine against ONNX Runtime and `tokenizers` used directly on the same bundle files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from server.bundle import load_bundle
from server.engine import Engine, softmax

TICKETS = [
    (
        "Payment gateway down",
        "Since this morning every card payment fails with error 502. Customers cannot pay.",
    ),
    ("", "Bitte ändern Sie die Rechnungsadresse für unser Konto."),
    ("Pregunta", "¿Cómo puedo exportar mis datos a CSV?"),
]


def _raw_logits(bundle: Path, subject: str, body: str) -> np.ndarray:
    """What the export's bundle computes for one ticket, without any server code."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    recipe = manifest["text_recipe"]
    parts = {"subject": subject.strip(), "body": body.strip()}
    text = recipe["separator"].join(parts[f] for f in recipe["fields"] if parts[f])
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=manifest["max_length"])
    enc = tokenizer.encode(text)
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {
        "input_ids": np.array([enc.ids], dtype=np.int64),
        "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
        "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
    }
    names = [i.name for i in session.get_inputs()]
    (logits,) = session.run([manifest["output"]], {n: feeds[n] for n in names})
    return np.asarray(logits)[0]


def expected_scores(bundle: Path, logits: np.ndarray) -> np.ndarray:
    """The contract's scores for raw ``logits``: softmax((z + bias) / temperature) with the manifest's
    calibration (temperature 1, bias 0 without one)."""
    calibration = json.loads((bundle / "manifest.json").read_text()).get("calibration") or {}
    z = np.atleast_2d(logits).astype(np.float64)
    bias = np.asarray(calibration.get("bias") or [0.0] * z.shape[1])
    return softmax((z + bias) / float(calibration.get("temperature", 1.0)))


@pytest.fixture(scope="module")
def engine(bundle_dir: Path) -> Engine:
    return Engine.load(load_bundle(bundle_dir))


@pytest.mark.parametrize("bundle_fixture", ["bundle_dir", "bundle_dir_fp32"])
def test_engine_logits_equal_raw_onnx_runtime(bundle_fixture: str, request: pytest.FixtureRequest) -> None:
    bundle: Path = request.getfixturevalue(bundle_fixture)
    engine = Engine.load(load_bundle(bundle))
    for subject, body in TICKETS:
        ours = engine.infer(engine.tokenize([engine.build_text(subject, body)]))[0]
        np.testing.assert_allclose(ours, _raw_logits(bundle, subject, body), rtol=0, atol=1e-6)


def test_padding_does_not_change_fp32_logits(bundle_dir_fp32: Path) -> None:
    engine = Engine.load(load_bundle(bundle_dir_fp32))
    encoded = engine.tokenize([engine.build_text(s, b) for s, b in TICKETS])
    assert len({e.n_tokens for e in encoded}) > 1  # the batch really is padded
    batched = engine.infer(encoded)
    single = np.concatenate([engine.infer([e]) for e in encoded])
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_truncation_to_max_length_is_flagged(engine: Engine) -> None:
    short, long = engine.tokenize(["short ticket", "word " * (engine.max_length * 3)])
    assert not short.truncated and short.n_tokens < engine.max_length
    assert long.truncated and long.n_tokens == engine.max_length
    assert engine.infer([short, long]).shape == (2, len(engine.labels))


def test_predictions_are_a_softmax_over_the_labels(engine: Engine, bundle_dir: Path) -> None:
    logits = engine.infer(engine.tokenize([engine.build_text(s, b) for s, b in TICKETS]))
    for row, pred in zip(expected_scores(bundle_dir, logits), engine.predictions(logits), strict=True):
        assert list(pred.scores) == engine.labels
        assert sum(pred.scores.values()) == pytest.approx(1.0)
        assert pred.label_id == int(np.argmax(row)) and pred.label == engine.labels[pred.label_id]
        assert pred.confidence == pytest.approx(row.max())


def test_unknown_characters_are_counted(engine: Engine) -> None:
    if engine.unk_id is None:
        pytest.skip("this bundle's tokenizer has no unknown token (e.g. byte-level BPE)")
    (plain,) = engine.tokenize(["the ticket"])
    (odd,) = engine.tokenize(["\ue000\ue001 \U0001f600 \U0001d11e"])  # private-use, emoji, music symbol
    assert plain.unk_count == 0
    assert odd.unk_count >= 1


def test_softmax_is_stable_for_large_logits() -> None:
    probs = softmax(np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32))
    assert np.isfinite(probs).all()
    assert probs[0, 0] == pytest.approx(1.0)


def test_character_cap_keeps_tokens_and_truncation_flag_exact(engine: Engine) -> None:
    import random

    from tokenizers import Tokenizer

    full = Tokenizer.from_file(str(engine.bundle.tokenizer_path))
    full.no_padding()
    full.enable_truncation(max_length=engine.max_length)
    rng = random.Random(0)
    words = [
        "printer",
        "Rechnung",
        "¿cómo?",
        "error-502",
        "x" * 150,
        "naïve",
        "\u00e9t\u0301e",
        "\n",
        "日本語",
        "ok.",
    ]
    texts = []
    for n_words in (5, 200, 600, 2000, 5000):
        texts.append(" ".join(rng.choice(words) for _ in range(n_words)))
    texts.append("a" * 30_000)  # no whitespace near the cap: tokenized in full
    texts.append(("word " * 2000) + "tail")
    assert any(len(t) > engine.char_cap for t in texts)
    got = engine.tokenize(texts)
    for text, enc in zip(texts, got, strict=True):
        want = full.encode(text)
        assert enc.ids == want.ids, text[:40]
        assert enc.truncated == bool(want.overflowing)


@pytest.mark.parametrize(
    ("requested", "device", "available", "expected"),
    [
        ("auto", "cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]),
        (
            "auto",
            "cuda",
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        ("auto", "cuda", ["CPUExecutionProvider"], ["CPUExecutionProvider"]),
        (
            "cuda",
            "cpu",
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        ("cpu", "cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]),
    ],
)
def test_execution_provider_choice(
    requested: str, device: str, available: list[str], expected: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    from server.engine import select_providers

    assert select_providers(requested, device, available) == expected
    fell_back = (
        expected == ["CPUExecutionProvider"]
        and (requested == "cuda" or device == "cuda")
        and requested != "cpu"
    )
    assert ("falling back to CPUExecutionProvider" in caplog.text) is fell_back


def test_this_machine_serves_on_cpu(engine: Engine) -> None:
    assert engine.device == "cpu" and engine.providers == ["CPUExecutionProvider"]
