"""Drift on the real server's prediction log against a held-out reference scored by the same real tiny bundle
(made by the export code), and the robustness check."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from monitoring import drift, robustness
from monitoring.bundle import BundleError, BundlePredictor
from server.language import guess_language
from tests.server_process import ServerProcess

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


# A queue the model never saw: clinical-trial support, in words no sample ticket uses (the tokenizer splits
# them into many more pieces than the sample's words: chars_per_token falls; no [UNK] is needed for that).
# Two words a ticket: short enough not to be truncated at the tiny model's 64 tokens, which spells an unseen
# word letter by letter (chars_per_token counts untruncated texts only; measured: at most 58 tokens).
NEW_QUEUE_WORDS = (
    "pharmacovigilance", "randomisation", "immunogenicity", "pharmacokinetics", "bioequivalence",
    "excipient", "placebo", "investigator", "cohort", "adjudication", "serology", "phlebotomy",
    "centrifugation", "aliquot", "biospecimen", "cryovial", "haematology", "electrocardiogram",
    "spirometry", "titration", "washout",
    "unblinding", "stratification", "protocol", "amendment",
)  # fmt: skip


def new_queue_tickets(n: int, seed: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    tickets = []
    for i in range(n):
        words = " ".join(rng.choice(NEW_QUEUE_WORDS, size=2))
        tickets.append({"subject": f"Trial site {i}: {rng.choice(NEW_QUEUE_WORDS)}", "text": f"{words}."})
    return tickets


def tickets_of(frame: pd.DataFrame) -> list[dict[str, str]]:
    return [{"subject": s, "text": b} for s, b in zip(frame["subject"], frame["body"], strict=True)]


def serve_windows(bundle: Path, windows: dict[str, list[dict[str, str]]], out: Path) -> dict[str, Path]:
    """The real server on 127.0.0.1 with its prediction log on; each window's tickets go through
    /predict/batch in turn and its log lines are cut into ``out/<window>.jsonl``."""
    log = out / "predictions.jsonl"
    paths: dict[str, Path] = {}
    with ServerProcess(bundle, env={"PREDICTION_LOG_PATH": str(log)}) as server:
        server.wait_ready()
        done = 0
        for name, tickets in windows.items():
            for start in range(0, len(tickets), 32):
                answer = httpx.post(
                    f"{server.base_url}/predict/batch",
                    json={"items": tickets[start : start + 32]},
                    timeout=60,
                )
                assert answer.status_code == 200, answer.text
            deadline = time.monotonic() + 30
            while True:  # the log is written by a background thread: wait for this window's lines
                lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
                if len(lines) >= done + len(tickets) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert len(lines) == done + len(tickets), f"{name}: {len(lines) - done} of {len(tickets)} logged"
            paths[name] = out / f"{name}.jsonl"
            paths[name].write_text("\n".join(lines[done:]) + "\n", encoding="utf-8")
            done = len(lines)
    return paths


def drift_report(
    log: Path,
    bundle: Path,
    out: Path,
    reference: Path | None = None,
    min_samples: int = 30,
    extra: Sequence[str] = (),
) -> tuple[int, dict[str, Any]]:
    args = [
        "--log",
        str(log),
        "--bundle",
        str(bundle),
        "--output",
        str(out),
        "--min-samples",
        str(min_samples),
    ]
    if reference is not None:
        args += ["--reference", str(reference)]
    code = drift.main([*args, *extra])
    report = json.loads((out / "drift.json").read_text())
    sys.stdout.write(f"--- {log.stem}\n" + drift.format_summary(_as_report(report)))
    return code, report


def _as_report(payload: dict[str, Any]) -> drift.DriftReport:
    from monitoring.stats import FeatureDrift, Thresholds

    return drift.DriftReport(
        verdict=payload["verdict"],
        features=[FeatureDrift(**f) for f in payload["features"]],
        reference=payload["reference"],
        current=payload["current"],
        thresholds=Thresholds(**payload["thresholds"]),
        notes=payload["notes"],
    )


def assert_drift_on_shifts(
    windows: dict[str, Path],
    bundle: Path,
    tmp_path: Path,
    reference: Path | None,
    extra: Sequence[str] = (),
    long_moves: frozenset[str] = frozenset({"n_chars", "truncated"}),
) -> None:
    """Each real shift alarms, on the features it moves."""
    expected = {
        "language_mix": {"language"},
        # n_tokens too on the sample; real tickets are nearly all cut at the tiny model's 64 tokens
        # already, so there only n_chars moves
        "long_texts": set(long_moves),
        "new_queue": {"chars_per_token"},
    }
    for name, features in expected.items():
        code, report = drift_report(windows[name], bundle, tmp_path / name, reference, extra=extra)
        assert code == drift.EXIT_DRIFT, (name, report["drifted_features"])
        assert features <= set(report["drifted_features"]), (name, report["drifted_features"])


def shifted_windows(pool: pd.DataFrame, seed: int = 3) -> dict[str, list[dict[str, str]]]:
    """Real tickets (any split: the shift is the point) moved three ways."""
    not_english = pool[[guess_language(t) != "en" for t in pool["text"]]]
    long = [{"subject": t["subject"], "text": " ".join([t["text"]] * 6)} for t in tickets_of(pool.head(150))]
    return {
        "language_mix": tickets_of(not_english.head(150)),
        "long_texts": long,
        "new_queue": new_queue_tickets(120, seed),
    }


def test_drift_held_out_passes_and_real_shifts_alarm(
    tiny_bundle: Path, sample_prepared: Any, tmp_path: Path
) -> None:
    """Window = held-out val rows through the real server; reference = the held-out test split scored by
    the same bundle (found from the bundle's manifest): no alarm. Three real shifts, same server: alarm."""
    pool = pd.concat([sample_prepared.train, sample_prepared.val, sample_prepared.test], ignore_index=True)
    windows = serve_windows(
        tiny_bundle, {"held_out": tickets_of(sample_prepared.val), **shifted_windows(pool)}, tmp_path
    )
    code, report = drift_report(windows["held_out"], tiny_bundle, tmp_path / "held_out")
    assert report["reference"]["source"].endswith("test.parquet")
    assert report["reference"]["data_hash"] == sample_prepared.stats["data_hash"]
    assert code == drift.EXIT_OK, report["drifted_features"]
    compared = {f["name"] for f in report["features"]}
    assert compared == {"language", "label", "truncated", "n_chars", "n_tokens", "chars_per_token",
                        "confidence", "unk_ratio"}  # fmt: skip
    assert_drift_on_shifts(windows, tiny_bundle, tmp_path, None)
    page = (tmp_path / "new_queue" / "drift.html").read_text()
    assert page.count("<svg") == len(compared) and "DRIFT" in page


@pytest.mark.real_data
def test_drift_on_real_tickets_held_out_passes_and_real_shifts_alarm(
    tiny_bundle: Path, shared_tickets_dir: Path, tmp_path: Path
) -> None:
    """The same on the real tickets (hundreds of held-out rows a side: the no-alarm case has power here)."""
    from training.data import prepare
    from training.data.config import compose

    cfg = compose("prepare", ["data=tickets"]).data
    cfg.paths = [str(shared_tickets_dir)]
    cfg.output_dir = str(tmp_path / "tickets")
    prepared = prepare(cfg)
    pool = pd.concat([prepared.train, prepared.val, prepared.test], ignore_index=True)
    windows = serve_windows(
        tiny_bundle, {"held_out": tickets_of(prepared.val), **shifted_windows(pool)}, tmp_path
    )
    reference = tmp_path / "tickets" / "test.parquet"
    # the tiny bundle was gated on the sample data: the real tickets' split is other held-out data, on purpose
    args = (windows["held_out"], tiny_bundle, tmp_path / "held_out", reference)
    refused = ["--log", str(args[0]), "--bundle", str(tiny_bundle), "--reference", str(reference)]
    assert drift.main([*refused, "--output", str(tmp_path / "refused")]) == drift.EXIT_INPUT
    code, report = drift_report(*args, 50, extra=["--allow-other-data"])
    assert code == drift.EXIT_OK, report["drifted_features"]
    assert any("--allow-other-data" in note for note in report["notes"]), report["notes"]
    assert report["reference"]["n"] == len(prepared.test) and report["current"]["n"] == len(prepared.val)
    assert_drift_on_shifts(
        windows, tiny_bundle, tmp_path, reference, ["--allow-other-data"], frozenset({"n_chars"})
    )


def test_a_training_split_is_refused_as_the_reference_of_a_bundle(
    tiny_bundle: Path, sample_prepared: Any, tmp_path: Path
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("")
    train = Path(sample_prepared.output_dir) / "train.parquet"
    args = ["--log", str(log), "--bundle", str(tiny_bundle), "--reference", str(train)]
    assert drift.main([*args, "--output", str(tmp_path / "o")]) == drift.EXIT_INPUT


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
