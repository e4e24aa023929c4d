"""The smoke experiment end to end: train -> checkpoint (contract, section 3) -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from training import evaluate

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_best_checkpoint_follows_the_contract(tiny_checkpoint: Path) -> None:
    names = {p.name for p in tiny_checkpoint.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "labels.json",
        "metrics.json",
        "recipe.json",
    } <= names
    assert not list(tiny_checkpoint.parent.glob(".best.*")), "temporary checkpoint dirs left behind"

    labels = json.loads((tiny_checkpoint / "labels.json").read_text())
    assert labels == {"target": "priority", "labels": ["low", "medium", "high"]}

    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["id2label"] == {"0": "low", "1": "medium", "2": "high"}
    assert config["label2id"] == {"low": 0, "medium": 1, "high": 2}

    metrics = json.loads((tiny_checkpoint / "metrics.json").read_text())
    assert metrics["epoch"] >= 1 and metrics["step"] >= 1
    val = metrics["val"]
    assert 0.0 <= val["macro_f1"] <= 1.0 and 0.0 <= val["accuracy"] <= 1.0
    assert set(val["per_class"]) == {"low", "medium", "high"}
    assert set(val["per_language_macro_f1"]) == {"en", "de", "es", "fr", "pt"}

    recipe = json.loads((tiny_checkpoint / "recipe.json").read_text())
    assert recipe["text_recipe"] == {"fields": ["subject", "body"], "separator": "\n"}
    assert recipe["max_length"] == 64 and recipe["model_name"] == "tiny" and recipe["pretrained"] == "random"
    assert len(recipe["data"]["stats_sha256"]) == 64
    assert set(recipe["data"]["split_sha256"]) == {"train", "val", "test"}
    assert Path(recipe["data"]["output_dir"]).is_dir()


def test_checkpoint_loads_and_predicts(tiny_checkpoint: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    assert tokenizer.is_fast
    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint).eval()
    batch = tokenizer(
        ["Server down, nothing works!", "Kleine Frage zur Rechnung"], padding=True, return_tensors="pt"
    )
    ids = batch["input_ids"][0].tolist()
    assert ids[0] == tokenizer.cls_token_id and tokenizer.sep_token_id in ids
    with torch.inference_mode():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def test_smoke_model_learned_something(tiny_run_dir: Path) -> None:
    """Far above the 1/3 of a constant predictor on the (easy, synthetic) sample: the loop really trains."""
    summary = json.loads((tiny_run_dir / "metrics" / "train_summary.json").read_text())
    assert summary["best_val_macro_f1"] > 0.5
    assert summary["global_step"] == summary["total_steps_planned"] == 4 * summary["steps_per_epoch"]
    history = json.loads((tiny_run_dir / "metrics" / "history.json").read_text())
    lrs = [s["lr"] for s in history["steps"]]
    peak = max(lrs)
    assert peak <= 5e-3 + 1e-12 and lrs.index(peak) < len(lrs) // 3, "warmup then decay"
    assert lrs[-1] < 0.1 * peak, "linear decay reaches ~0 at the last step"
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4]


def test_run_writes_evaluation_report(tiny_run_dir: Path) -> None:
    metrics_dir = tiny_run_dir / "metrics"
    report = json.loads((metrics_dir / "report.json").read_text())
    for model in ("transformer", "baseline"):
        for split in ("val", "test"):
            m = report[model][split]
            assert m["n"] == report["data"]["rows"][split] > 0
            assert set(m["per_class"]) == {"low", "medium", "high"}
            assert m["per_language_macro_f1"], "per-language macro-F1 missing"
            assert sum(map(sum, m["confusion_matrix"])) == m["n"]
    assert report["baseline"]["test"]["macro_f1"] > 0.5  # TF-IDF separates the synthetic sample well
    for png in ("confusion_matrix.png", "curves.png"):
        assert (metrics_dir / png).read_bytes()[:8] == PNG_MAGIC


def test_evaluate_cli_prints_table_and_writes_report(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    assert evaluate.main([str(tiny_checkpoint), "--output-dir", str(out), "--no-baseline"]) == 0
    table = capsys.readouterr().out
    assert "macro-F1" in table and "transformer" in table and "per-language" in table
    report = json.loads((out / "report.json").read_text())
    assert "baseline" not in report and report["transformer"]["test"]["n"] > 0
    # same data, same checkpoint: the CLI reproduces the scores written at the end of training
    trained = json.loads((tiny_checkpoint.parents[1] / "metrics" / "report.json").read_text())
    assert report["transformer"]["test"]["macro_f1"] == pytest.approx(
        trained["transformer"]["test"]["macro_f1"]
    )


def test_evaluate_cli_with_data_overrides(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    prepared = (tmp_path / "prepared").as_posix()
    code = evaluate.main(
        [str(tiny_checkpoint), "data=sample", f"data.output_dir={prepared}", "--output-dir", str(out)]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["output_dir"] == str(Path(prepared))
    assert report["baseline"]["test"]["n"] == report["transformer"]["test"]["n"]


def test_evaluate_cli_rejects_a_non_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a training checkpoint" in err and "Traceback" not in err


def test_changed_prepared_data_is_an_error_in_evaluate_and_export(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint whose data dir now holds other splits (stats.json hash differs) is not scored silently."""
    import shutil

    from export.checkpoint import load_checkpoint
    from export.errors import CheckpointError

    data = tmp_path / "processed"
    shutil.copytree(
        Path(json.loads((tiny_checkpoint / "recipe.json").read_text())["data"]["output_dir"]), data
    )
    checkpoint = tmp_path / "best"
    shutil.copytree(tiny_checkpoint, checkpoint)
    recipe = json.loads((checkpoint / "recipe.json").read_text())
    recipe["data"]["output_dir"] = str(data)
    (checkpoint / "recipe.json").write_text(json.dumps(recipe))
    assert load_checkpoint(checkpoint).data_dir == data  # unchanged: fine
    stats = json.loads((data / "stats.json").read_text())
    (data / "stats.json").write_text(json.dumps({**stats, "new_key": []}))  # a new config key: same splits
    assert load_checkpoint(checkpoint).data_dir == data
    val = pd.read_parquet(data / "val.parquet")
    val.iloc[::-1].to_parquet(data / "val.parquet", index=False)  # e.g. re-prepared with another seed
    assert evaluate.main([str(checkpoint), "--output-dir", str(tmp_path / "eval"), "--no-baseline"]) == 2
    err = capsys.readouterr().err
    assert f"the prepared data in {data} changed since this checkpoint was trained (val.parquet" in err
    assert "Traceback" not in err
    with pytest.raises(CheckpointError, match=r"changed since .* was trained"):
        _ = load_checkpoint(checkpoint).data_dir
