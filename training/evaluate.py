"""Evaluate a checkpoint on the val and test splits, beside the TF-IDF baseline trained on the same split.

    # on the data the run was trained on
    python -m training.evaluate outputs/train/<run>/checkpoints/best
    # or on any data config / overrides
    python -m training.evaluate <checkpoint> data=tickets

Writes ``report.json``, ``confusion_matrix.png`` and ``curves.png`` into ``<run>/metrics/`` (or
``--output-dir``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bundle_contract.lineage import changed_data
from quality.baseline import run_baseline
from quality.metrics import classification_metrics
from training.errors import CheckpointError, TrainingError
from training.pooling import load_classifier
from training.predict import predict_logits
from training.utils import sha256_file, write_json_atomic

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
SPLITS = ("val", "test")


def read_checkpoint_meta(checkpoint: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``labels.json`` and ``recipe.json`` of a ``best`` checkpoint, with a clear error when it is not one."""
    missing = [
        name for name in ("config.json", "labels.json", "recipe.json") if not (checkpoint / name).is_file()
    ]
    if missing:
        raise CheckpointError(
            f"{checkpoint} is not a training checkpoint (missing {', '.join(missing)}); "
            "pass outputs/train/<run>/checkpoints/best"
        )
    labels = json.loads((checkpoint / "labels.json").read_text(encoding="utf-8"))
    recipe = json.loads((checkpoint / "recipe.json").read_text(encoding="utf-8"))
    return labels, recipe


def evaluate_checkpoint(
    checkpoint: Path,
    prepared: Any,
    output_dir: Path,
    *,
    baseline: bool = True,
    batch_size: int = 64,
    device: torch.device | None = None,
    train_summary: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Score ``checkpoint`` on ``prepared`` (a ``PreparedData``), write the report and figures, return the
    report.
    """
    from transformers import AutoTokenizer

    from training.plots import plot_confusion_matrices, plot_curves

    labels_meta, recipe = read_checkpoint_meta(checkpoint)
    labels = list(labels_meta["labels"])
    if labels != list(prepared.labels):
        raise CheckpointError(
            f"checkpoint labels {labels} differ from the data's {list(prepared.labels)}: "
            "evaluate with the data config the model was trained on"
        )
    if dict(recipe.get("text_recipe", {})) != dict(prepared.text_recipe):
        log.warning(
            "text recipe differs: checkpoint %s, data %s", recipe.get("text_recipe"), prepared.text_recipe
        )
    device = device or torch.device("cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model = load_classifier(checkpoint).to(device)  # the class it was trained as (training/pooling.py)
    max_length = int(recipe["max_length"])

    report: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "model_name": recipe.get("model_name"),
        "target": labels_meta.get("target"),
        "labels": labels,
        "data": {
            "output_dir": str(prepared.output_dir),
            "rows": {s: len(getattr(prepared, s)) for s in ("train", "val", "test")},
        },
        "transformer": {},
    }
    stats = Path(prepared.output_dir) / "stats.json"
    if stats.is_file():
        report["data"]["stats_sha256"] = sha256_file(stats)
    frames = {s: getattr(prepared, s) for s in SPLITS}
    split_logits: dict[str, Any] = {}
    for split, frame in frames.items():
        start = time.perf_counter()
        logits = predict_logits(
            model, tokenizer, frame["text"].tolist(), max_length, batch_size=batch_size, device=device
        )
        seconds = time.perf_counter() - start
        split_logits[split] = logits
        metrics = classification_metrics(
            frame["label_id"].tolist(), logits.argmax(axis=1), labels, frame["language"].tolist()
        )
        metrics["inference_samples_per_s"] = round(len(frame) / seconds, 2) if seconds else None
        report["transformer"][split] = metrics
    if baseline:
        eval_sets = {
            s: (f["text"].tolist(), f["label_id"].tolist(), f["language"].tolist()) for s, f in frames.items()
        }
        train = prepared.train
        result = run_baseline(train["text"].tolist(), train["label_id"].tolist(), eval_sets, labels)
        report["baseline"] = {
            "name": "tfidf_word_char_logreg",
            "fit_seconds": round(result.fit_seconds, 2),
            **result.metrics,
        }
    report["calibration"] = calibration_section(split_logits, frames, labels, recipe.get("calibration"))
    if train_summary is not None:
        report["train"] = dict(train_summary)
    report["created_at"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    output_dir.mkdir(parents=True, exist_ok=True)
    for split, logits in split_logits.items():  # for ablations and ensembles without re-running the model
        np.save(output_dir / f"{split}_logits.npy", logits.astype(np.float32))
    matrices = {"transformer (test)": report["transformer"]["test"]["confusion_matrix"]}
    if baseline:
        matrices["TF-IDF baseline (test)"] = report["baseline"]["test"]["confusion_matrix"]
    plot_confusion_matrices(matrices, labels, output_dir / "confusion_matrix.png")
    history_path = output_dir / "history.json"
    if history_path.is_file():
        plot_curves(json.loads(history_path.read_text(encoding="utf-8")), output_dir / "curves.png")
    write_json_atomic(output_dir / "report.json", report)
    log.info("evaluation report written to %s\n%s", output_dir / "report.json", format_report(report))
    return report


def calibration_section(
    logits: Mapping[str, Any],
    frames: Mapping[str, Any],
    labels: Sequence[str],
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit bias/temperature/review band on val (quality.calibration); report them on test, before/after.

    The export fits the same on the served ONNX logits; this is the training-side view of what it will do.
    """
    from quality.calibration import calibration_report, fit_calibration

    options = dict(options or {})
    target = float(options.get("target_accuracy", 0.70))
    val_y = frames["val"]["label_id"].to_numpy()
    test_y = frames["test"]["label_id"].to_numpy()
    if len(val_y) == 0 or len(test_y) == 0:
        return {"skipped": "val or test split is empty"}
    out: dict[str, Any] = {"target_accuracy": target}
    for name, tune_bias in (("temperature", False), ("bias+temperature", True)):
        fitted = fit_calibration(logits["val"], val_y, tune_bias=tune_bias, target_accuracy=target)
        test_report = calibration_report(logits["test"], test_y, fitted)
        calibrated = fitted.scores(logits["test"])
        test_metrics = classification_metrics(
            test_y.tolist(), calibrated.argmax(axis=1), labels, frames["test"]["language"].tolist()
        )
        out[name] = {
            **fitted.to_manifest(),
            "test": {k: round(v, 4) for k, v in test_report.items()},
            "test_per_language_macro_f1": test_metrics["per_language_macro_f1"],
            "test_recall": {lab: test_metrics["per_class"][lab]["recall"] for lab in labels},
        }
    return out


def format_report(report: Mapping[str, Any]) -> str:
    """Plain-text tables: each model on each split (n, accuracy, macro-F1, per-class recall/F1), per-language
    test macro-F1, and the calibration fitted on val as scored on test."""
    import pandas as pd

    models = {"transformer": report["transformer"]}
    if "baseline" in report:
        models["tfidf+logreg"] = report["baseline"]
    rows = {
        (name, split): {"n": m["n"], "acc": m["accuracy"], "macro-F1": m["macro_f1"]}
        | {
            f"{k}_{lab}": c[key]
            for lab, c in m["per_class"].items()
            for k, key in (("R", "recall"), ("F1", "f1"))
        }
        for name, splits in models.items()
        for split, m in ((s, splits[s]) for s in SPLITS)
    }
    tables = {
        "": pd.DataFrame.from_dict(rows, orient="index"),
        "per-language test macro-F1": pd.DataFrame(
            {name: splits["test"]["per_language_macro_f1"] for name, splits in models.items()}
        ),
        "calibrated on val, scored on test": pd.DataFrame(
            {
                k: v["test"]
                for k, v in report.get("calibration", {}).items()
                if isinstance(v, Mapping) and "test" in v
            }
        ),
    }
    return "\n".join(
        (f"{title}\n" if title else "") + table.to_string(float_format="%.3f")
        for title, table in tables.items()
        if not table.empty
    )


def _load_data(checkpoint: Path, overrides: Sequence[str], recipe: Mapping[str, Any]) -> Any:
    from training.data import load_prepared, prepare

    if not overrides:
        output_dir = Path(str(recipe.get("data", {}).get("output_dir", "")))
        if not (output_dir / "stats.json").is_file():
            raise CheckpointError(
                f"the prepared data of this checkpoint ({output_dir}) is gone: pass data overrides, e.g. "
                "`python -m training.evaluate <checkpoint> data=sample`"
            )
        if (why := changed_data(recipe.get("data", {}), output_dir)) is not None:
            raise CheckpointError(
                f"the prepared data in {output_dir} changed since this checkpoint was trained ({why}): "
                "re-prepare it with the data config of that run, or pass data overrides to score other data "
                "on purpose (`python -m training.evaluate <checkpoint> data=sample`)"
            )
        return load_prepared(output_dir)
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return prepare(cfg.data)


def main(argv: Sequence[str] | None = None) -> int:
    from training.logging_setup import configure_logging

    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="a checkpoints/best directory")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra data overrides, e.g. data=tickets 'data.paths=[...]'"
    )
    parser.add_argument("--output-dir", type=Path, default=None, help="default: <run>/metrics")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the TF-IDF + logistic regression baseline"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        from hydra.errors import HydraException

        from training.data.errors import DataError

        checkpoint = args.checkpoint
        _, recipe = read_checkpoint_meta(checkpoint)
        prepared = _load_data(checkpoint, args.overrides, recipe)
        output_dir = args.output_dir or (
            checkpoint.parent.parent / "metrics"
            if checkpoint.parent.name == "checkpoints"
            else checkpoint / "metrics"
        )
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        report = evaluate_checkpoint(
            checkpoint,
            prepared,
            output_dir,
            baseline=not args.no_baseline,
            batch_size=args.batch_size,
            device=device,
        )
    except (TrainingError, DataError, HydraException) as exc:
        log.error("%s", exc)
        return 2
    sys.stdout.write(format_report(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
