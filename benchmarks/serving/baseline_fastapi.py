"""The conventional baseline service: FastAPI + PyTorch eager on the same checkpoint.

This is how such a model is usually first deployed: ``transformers`` tokenizer with
``padding="max_length"``, ``model(**inputs)`` under ``torch.inference_mode()`` inside an ``async def``
handler, so each uvicorn worker serves one request at a time (the handler blocks the event loop). Same API
as the real server for ``/predict``, ``/predict/batch``, ``/health`` and ``/ready``, so the same load
generator drives both.

Run::

    CHECKPOINT_DIR=outputs/bench-minilm/checkpoints/best PORT=8090 \
        uv run python -m benchmarks.serving.baseline_fastapi

Env vars: ``CHECKPOINT_DIR`` (required), ``HOST`` (127.0.0.1), ``PORT`` (8090), ``BASELINE_MAX_LENGTH``
(pad and truncate length; default the checkpoint's ``recipe.json`` max_length), ``WORKERS`` (uvicorn
workers, 1), ``BASELINE_TORCH_THREADS`` (default: torch's own, one per core).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

logger = logging.getLogger("benchmarks.serving.baseline_fastapi")


class Item(BaseModel):
    text: str = Field(min_length=1)
    subject: str | None = None


class Batch(BaseModel):
    items: list[Item] = Field(min_length=1, max_length=64)


@dataclass(slots=True)
class BaselineModel:
    model: Any
    tokenizer: Any
    labels: list[str]
    fields: list[str]
    separator: str
    max_length: int
    version: str

    def text(self, body: str, subject: str | None) -> str:
        values = {"subject": subject, "body": body}
        parts = [(values.get(name) or "").strip() for name in self.fields]
        return self.separator.join(part for part in parts if part)

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        import torch

        inputs = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        # A sequence filling the whole window was (almost surely) cut: no second tokenizer pass for the flag.
        filled = (inputs["attention_mask"].sum(dim=1) >= self.max_length).tolist()
        with torch.inference_mode():
            probabilities = torch.softmax(self.model(**inputs).logits, dim=-1).tolist()
        predictions = []
        for scores, full in zip(probabilities, filled, strict=True):
            best = max(range(len(scores)), key=scores.__getitem__)
            predictions.append(
                {
                    "label": self.labels[best],
                    "label_id": best,
                    "confidence": scores[best],
                    "scores": dict(zip(self.labels, scores, strict=True)),
                    "truncated": bool(full),
                    "model_version": self.version,
                }
            )
        return predictions


def load_baseline(checkpoint: Path, max_length: int | None = None) -> BaselineModel:
    """Load the checkpoint (contracts section 3) with ``transformers`` in eval mode."""
    from transformers import AutoTokenizer

    from training.pooling import load_classifier  # the class it was trained as (mean or [CLS] pooling)

    if not (checkpoint / "labels.json").is_file():
        raise FileNotFoundError(f"{checkpoint} is not a checkpoint (no labels.json): set CHECKPOINT_DIR")
    labels = json.loads((checkpoint / "labels.json").read_text(encoding="utf-8"))["labels"]
    recipe = json.loads((checkpoint / "recipe.json").read_text(encoding="utf-8"))
    model = load_classifier(checkpoint)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    text_recipe = recipe.get("text_recipe", {"fields": ["subject", "body"], "separator": "\n"})
    return BaselineModel(
        model=model,
        tokenizer=tokenizer,
        labels=list(labels),
        fields=list(text_recipe["fields"]),
        separator=str(text_recipe["separator"]),
        max_length=int(max_length or recipe.get("max_length", 256)),
        version=f"baseline-{checkpoint.name}",
    )


def create_app(checkpoint: Path, max_length: int | None = None) -> FastAPI:
    state: dict[str, BaselineModel] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        import torch

        if os.environ.get("BASELINE_TORCH_THREADS"):
            torch.set_num_threads(int(os.environ["BASELINE_TORCH_THREADS"]))
        state["model"] = load_baseline(checkpoint, max_length)
        state["model"].predict(["warm-up"])
        logger.info(
            "baseline ready: %s, max_length %d, torch threads %d",
            checkpoint,
            state["model"].max_length,
            torch.get_num_threads(),
        )
        yield
        state.clear()

    app = FastAPI(title="baseline: FastAPI + PyTorch eager", lifespan=lifespan)

    def _model() -> BaselineModel:
        if "model" not in state:
            raise HTTPException(status_code=503, detail="model not loaded")
        return state["model"]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready", "model_version": _model().version}

    # ``async def`` + blocking inference on purpose: one request at a time per worker, as commonly deployed.
    @app.post("/predict")
    async def predict(item: Item) -> dict[str, Any]:
        model = _model()
        if not item.text.strip():
            raise HTTPException(status_code=422, detail="text is empty")
        return model.predict([model.text(item.text, item.subject)])[0]

    @app.post("/predict/batch")
    async def predict_batch(batch: Batch) -> dict[str, Any]:
        model = _model()
        if any(not item.text.strip() for item in batch.items):
            raise HTTPException(status_code=422, detail="an item has empty text")
        texts = [model.text(item.text, item.subject) for item in batch.items]
        return {"predictions": model.predict(texts)}

    return app


def main() -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    checkpoint = os.environ.get("CHECKPOINT_DIR")
    if not checkpoint:
        logger.error("set CHECKPOINT_DIR to a checkpoint directory (contracts section 3)")
        return 2
    max_length = int(os.environ["BASELINE_MAX_LENGTH"]) if os.environ.get("BASELINE_MAX_LENGTH") else None
    workers = int(os.environ.get("WORKERS", "1"))
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8090"))
    if workers == 1:
        uvicorn.run(create_app(Path(checkpoint), max_length), host=host, port=port, log_level="warning")
    else:
        uvicorn.run(
            "benchmarks.serving.baseline_fastapi:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    return 0


def app_from_env() -> FastAPI:
    """uvicorn factory for ``WORKERS > 1``."""
    max_length = int(os.environ["BASELINE_MAX_LENGTH"]) if os.environ.get("BASELINE_MAX_LENGTH") else None
    return create_app(Path(os.environ["CHECKPOINT_DIR"]), max_length)


if __name__ == "__main__":
    raise SystemExit(main())
