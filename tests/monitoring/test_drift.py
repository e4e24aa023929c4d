"""Drift report on synthetic prediction logs: two windows of one distribution pass, a shifted one is flagged.
The held-out-reference and real-shift cases on the real server and a real bundle: test_with_bundle.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitoring import drift
from monitoring.records import read_prediction_log
from monitoring.stats import Thresholds, compare_categorical, compare_numeric, psi

LANGUAGES = ["en", "de", "es", "fr", "pt"]
PHRASES = {
    "en": "Please help us, the printer in our office does not work since the update. ",
    "de": "Bitte helfen Sie uns, der Drucker in unserem Büro funktioniert seit dem Update nicht mehr. ",
    "es": "Por favor ayúdenos, la impresora de nuestra oficina no funciona desde la actualización. ",
    "fr": "Merci de nous aider, l'imprimante de notre bureau ne fonctionne plus depuis la mise à jour. ",
    "pt": "Por favor ajudem, a impressora do nosso escritório não funciona desde a atualização. ",
}
LABELS = ["low", "medium", "high"]


def synthetic_log(
    n: int,
    seed: int,
    *,
    languages: tuple[list[str], list[float]] = (LANGUAGES, [0.45, 0.25, 0.1, 0.1, 0.1]),
    labels: list[float] | None = None,
    length_scale: float = 1.0,
    confidence: tuple[float, float] = (6.0, 3.0),
    unk_rate: float = 0.002,
) -> list[dict[str, Any]]:
    """Prediction-log records shaped like docs/contracts.md section 5."""
    rng = np.random.default_rng(seed)
    lang_names, lang_p = languages
    records = []
    for i in range(n):
        n_chars = int(rng.lognormal(mean=6.2, sigma=0.5) * length_scale)
        conf = float(rng.beta(*confidence))
        conf = max(conf, 1 / 3 + 1e-3)
        label = str(rng.choice(LABELS, p=labels or [0.2, 0.45, 0.35]))
        rest = (1 - conf) / 2
        records.append(
            {
                "ts": f"2026-11-29T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                "model_version": "minilm-priority-test",
                "label": label,
                "confidence": conf,
                "scores": {lab: (conf if lab == label else rest) for lab in LABELS},
                "n_chars": n_chars,
                "n_tokens": min(256, n_chars // 4),
                "truncated": n_chars // 4 > 256,
                "unk_ratio": float(rng.binomial(200, unk_rate) / 200),
                "language": str(rng.choice(lang_names, p=lang_p)),
            }
        )
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]], extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def shifted_log(n: int, seed: int) -> list[dict[str, Any]]:
    """New market (mostly Portuguese and an unseen language), longer tickets, less confident, more [UNK]."""
    return synthetic_log(
        n,
        seed,
        languages=(["en", "pt", "ja"], [0.2, 0.4, 0.4]),
        labels=[0.05, 0.35, 0.6],
        length_scale=2.5,
        confidence=(3.0, 3.0),
        unk_rate=0.05,
    )


@pytest.fixture(scope="module")
def reference_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("ref") / "reference.jsonl", synthetic_log(3000, seed=1))


def test_psi_is_zero_for_identical_and_large_for_disjoint_distributions() -> None:
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(0.0)
    assert psi([0.5, 0.5, 0.0], [0.0, 0.0, 1.0]) > 5.0


def test_categorical_compare_needs_significance_and_effect() -> None:
    th = Thresholds(alpha=0.01, psi=0.2)
    # Tiny shift, huge sample: significant but immaterial, so not drift.
    small = compare_categorical("x", {"a": 500_000, "b": 500_000}, ["a"] * 51_000 + ["b"] * 49_000, th)
    assert small.p_value < 0.01
    assert not small.drifted
    big = compare_categorical("x", {"a": 900, "b": 100}, ["a"] * 100 + ["b"] * 900, th)
    assert big.drifted
    assert big.reference["a"] == pytest.approx(0.9)
    assert big.current["b"] == pytest.approx(0.9)


def test_numeric_compare_flags_a_shifted_distribution_only() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 5000)
    th = Thresholds()
    assert not compare_numeric("v", reference, rng.normal(0, 1, 500), th).drifted
    shifted = compare_numeric("v", reference, rng.normal(1.5, 1, 500), th)
    assert shifted.drifted
    assert shifted.current["mean"] > shifted.reference["mean"] + 1.0


def test_unk_ratio_with_all_zero_reference_still_detects_unknown_tokens() -> None:
    th = Thresholds()
    result = compare_numeric("unk_ratio", np.zeros(1000), np.r_[np.zeros(200), np.full(300, 0.1)], th)
    assert result.drifted
    assert result.psi > 1.0


def test_two_windows_of_one_distribution_are_not_drifted(reference_log: Path, tmp_path: Path) -> None:
    current = write_jsonl(tmp_path / "current.jsonl", synthetic_log(600, seed=2))
    code = drift.main(
        ["--log", str(current), "--reference", str(reference_log), "--output", str(tmp_path / "out")]
    )
    report = json.loads((tmp_path / "out" / "drift.json").read_text())
    assert code == drift.EXIT_OK
    assert report["verdict"] == "not_drifted"
    assert report["drifted_features"] == []
    compared = {f["name"] for f in report["features"]}
    assert compared == {
        "language", "label", "truncated", "n_chars", "n_tokens", "chars_per_token", "confidence", "unk_ratio"
    }  # fmt: skip


def test_shifted_window_is_drifted_with_the_right_features(reference_log: Path, tmp_path: Path) -> None:
    current = write_jsonl(tmp_path / "current.jsonl", shifted_log(600, seed=3))
    code = drift.main(
        ["--log", str(current), "--reference", str(reference_log), "--output", str(tmp_path / "out")]
    )
    report = json.loads((tmp_path / "out" / "drift.json").read_text())
    assert code == drift.EXIT_DRIFT
    assert report["drifted"] is True
    assert {"language", "label", "n_chars", "confidence", "unk_ratio"} <= set(report["drifted_features"])
    language = next(f for f in report["features"] if f["name"] == "language")
    assert language["current"]["ja"] == pytest.approx(0.4, abs=0.06)
    assert language["reference"]["ja"] == 0.0
    page = (tmp_path / "out" / "drift.html").read_text()
    assert "<!doctype html>" in page
    assert "drifted" in page
    assert "unk_ratio" in page
    # one chart per feature: distributions of the reference and the window, side by side
    assert page.count("<svg") == len(report["features"])


def test_split_reference_compares_length_language_and_label(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 1500
    langs = rng.choice(LANGUAGES, size=n, p=[0.45, 0.25, 0.1, 0.1, 0.1])
    labels = rng.choice(LABELS, size=n, p=[0.2, 0.45, 0.35])
    # text in each language (the reference's language is the server's detector on the text, as in the log)
    bodies = [(PHRASES[lang] * 40)[: int(rng.lognormal(6.2, 0.5))] for lang in langs]
    split = pd.DataFrame(
        {
            "text": bodies,
            "subject": [""] * n,
            "body": bodies,
            "label": labels,
            "label_id": [LABELS.index(lab) for lab in labels],
            "language": langs,
            "source": ["synthetic.csv"] * n,
        }
    )
    split.to_parquet(tmp_path / "test.parquet")
    same = write_jsonl(tmp_path / "same.jsonl", synthetic_log(500, seed=7))
    moved = write_jsonl(tmp_path / "moved.jsonl", shifted_log(500, seed=8))
    ref = str(tmp_path / "test.parquet")
    assert drift.main(["--log", str(same), "--reference", ref, "--output", str(tmp_path / "a")]) == 0
    assert drift.main(["--log", str(moved), "--reference", ref, "--output", str(tmp_path / "b")]) == 1
    report = json.loads((tmp_path / "b" / "drift.json").read_text())
    assert {f["name"] for f in report["features"]} == {"language", "label", "n_chars"}
    assert any("confidence: not compared" in note for note in report["notes"])


def test_stats_json_reference(tmp_path: Path) -> None:
    counts = {
        "train": {
            "low": {"en": 90, "de": 50, "es": 20, "fr": 20, "pt": 20},
            "medium": {"en": 200, "de": 110, "es": 45, "fr": 45, "pt": 45},
            "high": {"en": 160, "de": 90, "es": 35, "fr": 35, "pt": 35},
        }
    }
    stats_path = tmp_path / "stats.json"
    stats_path.write_text(json.dumps({"target": "priority", "labels": LABELS, "counts": counts}))
    same = write_jsonl(tmp_path / "same.jsonl", synthetic_log(500, seed=11))
    moved = write_jsonl(tmp_path / "moved.jsonl", shifted_log(500, seed=12))
    args = ["--reference", str(stats_path), "--output", str(tmp_path / "out")]
    assert drift.main(["--log", str(same), *args]) == drift.EXIT_OK
    assert drift.main(["--log", str(moved), *args]) == drift.EXIT_DRIFT
    report = json.loads((tmp_path / "out" / "drift.json").read_text())
    assert {f["name"] for f in report["features"]} == {"label"}
    assert any("nor is language" in note for note in report["notes"])


def test_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "log.jsonl", synthetic_log(5, seed=0), extra_lines=("{not json", "[1, 2]", '{"label": 3}')
    )
    obs = read_prediction_log([path])
    assert len(obs) == 5
    assert obs.notes == ["3 line(s) that are not predictions skipped"]


def test_cloud_logging_entries_are_unwrapped(tmp_path: Path) -> None:
    records = synthetic_log(3, seed=0)
    entries = [{"jsonPayload": r, "resource": {"type": "cloud_run_revision"}} for r in records]
    entries.append(
        {"jsonPayload": {"message": "ready: model loaded", "severity": "INFO"}}
    )  # a server log line
    obs = read_prediction_log([write_jsonl(tmp_path / "export.json", entries)])
    assert len(obs) == 3
    assert obs.frame["label"].tolist() == [r["label"] for r in records]
    assert obs.notes == ["1 line(s) that are not predictions skipped"]


def test_filters_by_model_version_and_time(tmp_path: Path) -> None:
    records = synthetic_log(120, seed=0)
    for r in records[:20]:
        r["model_version"] = "old"
    path = write_jsonl(tmp_path / "log.jsonl", records)
    assert len(read_prediction_log([path], model_version="old")) == 20
    since = drift._parse_since("2026-11-29T10:01:00Z")
    assert len(read_prediction_log([path], since=since)) == 60


def test_an_empty_window_is_insufficient_not_an_error(reference_log: Path, tmp_path: Path) -> None:
    current = write_jsonl(tmp_path / "current.jsonl", synthetic_log(20, seed=4))
    args = ["--log", str(current), "--reference", str(reference_log), "--output", str(tmp_path / "o")]
    assert drift.main([*args, "--since", "2030-01-01T00:00:00Z"]) == drift.EXIT_INSUFFICIENT
    report = json.loads((tmp_path / "o" / "drift.json").read_text())
    assert report["current"]["n"] == 0
    assert report["features"] == []


def test_too_few_predictions_exit_3(reference_log: Path, tmp_path: Path) -> None:
    current = write_jsonl(tmp_path / "current.jsonl", shifted_log(10, seed=4))
    code = drift.main(
        ["--log", str(current), "--reference", str(reference_log), "--output", str(tmp_path / "o")]
    )
    assert code == drift.EXIT_INSUFFICIENT
    assert json.loads((tmp_path / "o" / "drift.json").read_text())["verdict"] == "insufficient_data"


def test_missing_or_unreadable_input_exit_2_with_a_message(
    reference_log: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code = drift.main(["--log", str(tmp_path / "nope.jsonl"), "--reference", str(reference_log)])
    assert code == drift.EXIT_INPUT
    assert "nope.jsonl not found" in caplog.text
    bad_ref = tmp_path / "ref.txt"
    bad_ref.write_text("x")
    current = write_jsonl(tmp_path / "c.jsonl", synthetic_log(60, seed=0))
    assert drift.main(["--log", str(current), "--reference", str(bad_ref)]) == drift.EXIT_INPUT
    assert "expected .jsonl" in caplog.text


def test_no_reference_and_no_bundle_is_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = write_jsonl(tmp_path / "c.jsonl", synthetic_log(60, seed=0))
    assert drift.main(["--log", str(log), "--output", str(tmp_path / "o")]) == drift.EXIT_INPUT
    assert "pass --bundle" in caplog.text
    with pytest.raises(SystemExit) as exit_info:  # --log is required: argparse names it
        drift.main([])
    assert exit_info.value.code == 2


def test_a_reference_from_other_data_than_the_bundle_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bundle's manifest records the data hash it was gated on; a split of other data is refused."""
    data = tmp_path / "processed"
    data.mkdir()
    pd.DataFrame({"text": ["My printer does not work."], "label": ["low"]}).to_parquet(data / "test.parquet")
    (data / "stats.json").write_text(json.dumps({"data_hash": "a" * 64}))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(
        json.dumps({"validation_data": {"dir": str(data), "data_hash": "b" * 64}})
    )
    log = write_jsonl(tmp_path / "c.jsonl", synthetic_log(60, seed=0))
    code = drift.main(["--log", str(log), "--bundle", str(bundle), "--output", str(tmp_path / "o")])
    assert code == drift.EXIT_INPUT
    assert "hash aaaaaaaaaaaa, the bundle was gated on bbbbbbbbbbbb" in caplog.text


def test_command_line_entry_point(reference_log: Path, tmp_path: Path, repo_root: Path) -> None:
    current = write_jsonl(tmp_path / "current.jsonl", shifted_log(300, seed=9))
    result = subprocess.run(
        [sys.executable, "-m", "monitoring.drift", "--log", str(current), "--reference", str(reference_log),
         "--output", str(tmp_path / "cli")],
        cwd=repo_root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "drift verdict: drifted" in result.stdout
    assert (tmp_path / "cli" / "drift.html").is_file()
