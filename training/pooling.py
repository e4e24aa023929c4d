"""Which vector the classifier reads (``model.pooling``); loading a checkpoint as the class it was trained as.

- ``cls`` (default): the Auto class's own head; BERT reads its ``[CLS]`` pooler (tanh dense layer), DistilBERT
  its ``[CLS]`` hidden state.
- ``mean``: the masked mean of the last layer's hidden states, how all-MiniLM-L6-v2 was trained; its ``[CLS]``
  pooler was never trained for a sentence vector (docs/training.md, "Levers for the quality goal").

A mean-pooled checkpoint names its class in ``config.json`` (``architectures``) and ``pooling: "mean"``. The
Auto class would load it *without an error* as a ``[CLS]`` classifier and score something else, so everything
that loads a checkpoint (evaluate, the export and its PyTorch reference, the benchmarks) goes through
:func:`load_classifier`, and a checkpoint that names a pooling this module does not know fails loudly.
The exported ONNX graph is the same function: the server needs nothing (its inputs and ``logits`` output do
not change).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
    BertModel,
    DistilBertForSequenceClassification,
    PretrainedConfig,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from training.checks import POOLINGS, check_pooling
from training.errors import ModelLoadError


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the real (mask 1) tokens of ``hidden`` (batch, seq, dim): padding never moves the result."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class BertMeanPoolForSequenceClassification(BertForSequenceClassification):
    """BERT whose head reads the masked mean of the last layer; no ``[CLS]`` pooler (nor its weights).

    Returns logits only: the loss is the trainer's (``TicketTrainer.compute_loss``, class weights).
    """

    _keys_to_ignore_on_load_unexpected = [r"pooler\."]  # type: ignore[assignment]  # noqa: RUF012

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,  # named so the Trainer finds its label column; loss is its own
        **_: Any,
    ) -> SequenceClassifierOutput:
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        pooled = masked_mean(hidden, attention_mask)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))


class DistilBertMeanPoolForSequenceClassification(DistilBertForSequenceClassification):
    """DistilBERT's head (pre_classifier, ReLU, dropout, classifier) on the masked mean, not ``[CLS]``."""

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,  # as above
        **_: Any,
    ) -> SequenceClassifierOutput:
        hidden = self.distilbert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = torch.relu(self.pre_classifier(masked_mean(hidden, attention_mask)))
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))


MEAN_POOL_CLASSES: dict[str, type[Any]] = {
    "bert": BertMeanPoolForSequenceClassification,
    "distilbert": DistilBertMeanPoolForSequenceClassification,
}
_BY_NAME = {cls.__name__: cls for cls in MEAN_POOL_CLASSES.values()}


def classifier_class(config: PretrainedConfig, pooling: str = "cls") -> type[Any]:
    """The class that builds (``pooling`` given) a classifier for ``config``."""
    if check_pooling(pooling) == "cls":
        return AutoModelForSequenceClassification
    if config.model_type not in MEAN_POOL_CLASSES:
        raise ModelLoadError(
            f"model.pooling=mean is built for {', '.join(MEAN_POOL_CLASSES)}, not {config.model_type}"
        )
    return MEAN_POOL_CLASSES[config.model_type]


def _class_recording(config: PretrainedConfig, pooling: str) -> type[Any]:
    """``classifier_class``, with a mean pooling recorded in ``config`` (so ``config.json`` names it)."""
    cls = classifier_class(config, pooling)
    if pooling == "mean":
        config.pooling = "mean"
    return cls


def new_classifier(config: PretrainedConfig, pooling: str = "cls") -> Any:
    """A randomly initialised classifier (the tiny model)."""
    cls = _class_recording(config, pooling)
    return cls.from_config(config) if cls is AutoModelForSequenceClassification else cls(config)


def from_pretrained(source: str, config: PretrainedConfig, pooling: str = "cls", **kwargs: Any) -> Any:
    """Pretrained encoder weights (hub id or folder) with a fresh head of the chosen pooling."""
    return _class_recording(config, pooling).from_pretrained(source, config=config, **kwargs)


def saved_pooling(config: PretrainedConfig) -> str:
    """``mean`` or ``cls``: how a saved checkpoint's head pools (its ``architectures`` and ``pooling``)."""
    architecture = (config.architectures or [""])[0]
    pooling = str(getattr(config, "pooling", None) or "cls")
    if pooling not in POOLINGS:
        raise ModelLoadError(f"checkpoint config names pooling '{pooling}', which this version cannot load")
    if architecture in _BY_NAME and pooling != "mean":
        raise ModelLoadError(f"checkpoint class {architecture} without pooling=mean in its config.json")
    return pooling


def load_classifier(checkpoint: str | Path, **kwargs: Any) -> Any:
    """A saved checkpoint with the class it was trained as (mean pooling or the Auto class's ``[CLS]``)."""
    config = AutoConfig.from_pretrained(str(checkpoint), **kwargs)
    cls = classifier_class(config, saved_pooling(config))
    return cls.from_pretrained(str(checkpoint), config=config, **kwargs)
