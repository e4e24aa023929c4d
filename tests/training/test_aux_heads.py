"""Auxiliary heads (``trainer.aux_targets``): queue/type trained beside priority, left out of the bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from omegaconf import OmegaConf
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from tests.fixtures.checkpoint import compose_training_config
from training.models import load_model
from training.run import _encode, training_arguments
from training.trainer import TicketTrainer, add_aux_heads

LABELS = ["low", "medium", "high"]
QUEUES = ["billing", "outage"]


def _trainer(tmp_path: Path, weight: float) -> TicketTrainer:
    import pandas as pd

    texts = [f"ticket {i} {'server down' if i % 2 else 'invoice question'}" for i in range(24)]
    frame = pd.DataFrame(
        {
            "text": texts,
            "label_id": [i % 3 for i in range(24)],
            "language": ["en"] * 24,
            # every fourth queue unknown ("") or never seen in training: both -100
            "queue": [("" if i % 8 == 0 else "other") if i % 4 == 0 else QUEUES[i % 2] for i in range(24)],
        }
    )
    loaded = load_model({"name": "tiny", "max_length": 16, "vocab_size": 200}, LABELS, texts)
    add_aux_heads(loaded.model, {"queue": QUEUES})
    rows, _ = _encode(loaded.tokenizer, frame, 16, aux={"queue": QUEUES})
    cfg = OmegaConf.merge(
        compose_training_config(["experiment=smoke"]).trainer, {"save_every_n_steps": 0, "lr": 1e-2}
    )
    args = training_arguments(cfg, tmp_path / "checkpoints" / "last", 0, [])
    args.save_strategy = args.eval_strategy = "no"
    return TicketTrainer(
        model=loaded.model,
        args=args,
        train_dataset=rows,
        data_collator=DataCollatorWithPadding(loaded.tokenizer),
        processing_class=loaded.tokenizer,
        head_lr_multiplier=10.0,
        aux_weights={"queue": weight},
    )


def test_aux_rows_mark_unknown_values_as_ignored(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = _trainer(tmp_path, 0.5).train_dataset  # type: ignore[assignment]
    assert [r["aux_queue"] for r in rows[:4]] == [-100, 1, 0, 1]
    assert sum(r["aux_queue"] == -100 for r in rows) == 6


def test_training_loss_adds_the_weighted_aux_loss_and_evaluation_does_not(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, 0.5)
    model: Any = trainer.model
    batch = trainer.data_collator(trainer.train_dataset[:8])  # type: ignore[index]
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    torch.manual_seed(0)
    model.train()
    loss = trainer.compute_loss(model, batch).detach()
    torch.manual_seed(0)  # the same dropout masks
    out = model.bert(**inputs)
    features = model.dropout(out.pooler_output)
    known = batch["aux_queue"] >= 0
    expected = F.cross_entropy(model.classifier(features), batch["labels"]) + 0.5 * F.cross_entropy(
        model.aux_heads["queue_head"](features)[known], batch["aux_queue"][known]
    )
    assert float(loss) == pytest.approx(float(expected.detach()), rel=1e-5)
    model.eval()
    with torch.no_grad():
        eval_loss = trainer.compute_loss(model, batch)
        logits = model(**inputs).logits
    assert float(eval_loss) == pytest.approx(float(F.cross_entropy(logits, batch["labels"])), rel=1e-6)


def test_aux_heads_train_at_the_head_learning_rate(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, 1.0)
    model: Any = trainer.model
    before = model.aux_heads["queue_head"].weight.detach().clone()
    trainer.train()
    assert not torch.allclose(before, model.aux_heads["queue_head"].weight)
    heads = {id(p) for p in model.aux_heads.parameters()}
    groups = [g for g in trainer.optimizer.param_groups if heads & {id(p) for p in g["params"]}]
    assert groups and all(g["initial_lr"] == pytest.approx(1e-2 * 10.0) for g in groups)


def test_a_run_with_aux_targets_ships_a_plain_classifier(tmp_path: Path) -> None:
    from training.run import train

    cfg = compose_training_config(["experiment=smoke", "trainer.aux_targets={queue: 0.5, type: 0.5}"])
    cfg.data.output_dir = str(tmp_path / "processed")
    threads = torch.get_num_threads()
    try:
        summary = train(cfg, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    best = tmp_path / "run" / "checkpoints" / "best"
    labels = json.loads((best / "labels.json").read_text())
    assert set(labels["aux_targets"]) == {"queue", "type"} and all(labels["aux_targets"].values())
    saved = load_file(str(best / "model.safetensors"))
    assert {k.split(".")[1] for k in saved if k.startswith("aux_heads.")} == {"queue_head", "type_head"}
    model = AutoModelForSequenceClassification.from_pretrained(str(best))  # what export loads
    assert not hasattr(model, "aux_heads") and model.config.num_labels == len(labels["labels"])
    assert "test_macro_f1" in summary and (tmp_path / "run" / "metrics" / "report.json").is_file()
