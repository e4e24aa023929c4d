"""Drift reference scoring and the robustness check on a real tiny bundle made by the export code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from monitoring import drift, robustness
from monitoring.bundle import BundleError, BundlePredictor

pytestmark = pytest.mark.slow


def test_predictor_agrees_with_the_server_engine(tiny_bundle_fp32: Path, sample_prepared: Any) -> None:
    """Batched scoring equals one-at-a-time scoring by the server's engine (fp32: int8 activations are
    quantized per batch, so there batch composition moves scores by ~1e-5)."""
    from server.bundle import load_bundle
    from server.engine import Engine

    predictor = BundlePredictor(tiny_bundle_fp32)
    frame = sample_prepared.val.head(20)
    texts = [predictor.text(s, b) for s, b in zip(frame["subject"], frame["body"], strict=True)]
    scored = predictor.score(texts, batch_size=7)
    engine = Engine.load(load_bundle(tiny_bundle_fp32))
    for i, text in enumerate(texts):
        (enc,) = engine.tokenize([text])
        (prediction,) = engine.predictions(engine.infer([enc]))
        assert prediction.label_id == scored.label_ids[i]
        assert prediction.confidence == pytest.approx(scored.confidence[i], abs=1e-5)
        assert enc.n_tokens == scored.n_tokens[i]
    assert texts == frame["text"].tolist()  # the recipe matches the data stage's


def test_damaged_bundle_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    (copy / "tokenizer.json").write_text("{}")
    with pytest.raises(BundleError, match=r"tokenizer\.json"):
        BundlePredictor(copy)


def _serve_and_log(bundle: Path, tickets: list[dict[str, str]], log_path: Path, repo_root: Path) -> None:
    """Run the real server on 127.0.0.1 with its prediction log on, send ``tickets``, stop it (SIGTERM)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MODEL_DIR": str(bundle), "HOST": "127.0.0.1", "PORT": str(port),
           "PREDICTION_LOG_PATH": str(log_path)}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "server"],
        cwd=repo_root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/ready", timeout=2).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "server did not become ready"
                time.sleep(0.2)
        for start in range(0, len(tickets), 32):
            body = json.dumps({"items": tickets[start : start + 32]}).encode()
            request = urllib.request.Request(
                f"{base}/predict/batch", data=body, headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=30).close()
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode == 0


def test_drift_on_the_real_server_prediction_log(
    tiny_bundle: Path, sample_prepared: Any, tmp_path: Path, repo_root: Path
) -> None:
    """The server's own prediction log against the training split scored by the same bundle: tickets from the
    same distribution pass; the same tickets upper-cased and six times as long are flagged."""
    frame = sample_prepared.train.sample(n=min(120, len(sample_prepared.train)), random_state=1)
    tickets = [{"subject": s, "text": b} for s, b in zip(frame["subject"], frame["body"], strict=True)]
    same_log, moved_log = tmp_path / "same.jsonl", tmp_path / "moved.jsonl"
    _serve_and_log(tiny_bundle, tickets, same_log, repo_root)
    moved = [{"subject": t["subject"].upper(), "text": " ".join([t["text"]] * 6)} for t in tickets]
    _serve_and_log(tiny_bundle, moved, moved_log, repo_root)
    assert len(same_log.read_text().splitlines()) == len(tickets)

    train_path = Path(sample_prepared.output_dir) / "train.parquet"
    args = ["--reference", str(train_path), "--bundle", str(tiny_bundle), "--min-samples", "30"]
    assert drift.main(["--log", str(same_log), *args, "--output", str(tmp_path / "same")]) == drift.EXIT_OK
    report = json.loads((tmp_path / "same" / "drift.json").read_text())
    compared = {f["name"] for f in report["features"]}
    assert compared == {"language", "label", "truncated", "n_chars", "n_tokens", "confidence", "unk_ratio"}
    assert (
        drift.main(["--log", str(moved_log), *args, "--output", str(tmp_path / "moved")]) == drift.EXIT_DRIFT
    )
    report = json.loads((tmp_path / "moved" / "drift.json").read_text())
    assert {"n_chars", "n_tokens"} <= set(report["drifted_features"])


def test_robustness_report(tiny_bundle: Path, sample_prepared: Any, tmp_path: Path, repo_root: Path) -> None:
    test_path = Path(sample_prepared.output_dir) / "test.parquet"
    result = subprocess.run(
        [sys.executable, "-m", "monitoring.robustness", "--bundle", str(tiny_bundle),
         "--data", str(test_path), "--output", str(tmp_path / "out"), "--max-drop", "100"],
        cwd=repo_root, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "robustness.json").read_text())
    shifts = [r["shift"] for r in report["results"]]
    assert shifts == ["none", "typos", "lowercase", "uppercase", "truncated", "no_subject", "language_swap"]
    baseline = report["results"][0]
    assert baseline["macro_f1_drop_points"] == 0.0 and baseline["changed_predictions"] == 0.0
    for r in report["results"][1:]:
        assert r["macro_f1_drop_points"] == pytest.approx(
            (baseline["macro_f1"] - r["macro_f1"]) * 100, abs=1e-3
        )
        assert 0.0 <= r["changed_predictions"] <= 1.0
        assert r["n"] == baseline["n"]
    assert set(report["per_language_macro_f1"]) <= {"en", "de", "es", "fr", "pt", "unknown"}
    assert "| truncated |" in result.stdout
    # A limit no shift can meet: exit 1, for automation.
    strict = robustness.main(
        ["--bundle", str(tiny_bundle), "--data", str(test_path), "--output", str(tmp_path / "strict"),
         "--max-drop", "-1", "--shifts", "uppercase"]
    )  # fmt: skip
    assert strict == robustness.EXIT_DROP


def test_robustness_bad_input(tiny_bundle: Path, tmp_path: Path) -> None:
    assert robustness.main(["--bundle", str(tmp_path), "--data", str(tmp_path / "x.parquet")]) == 2
    assert robustness.main(["--bundle", str(tiny_bundle), "--data", str(tmp_path / "x.parquet")]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("body,label\nhello,urgent\n")
    assert robustness.main(["--bundle", str(tiny_bundle), "--data", str(bad)]) == 2
