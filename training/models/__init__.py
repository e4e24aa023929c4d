"""Model registry: ``model.name`` -> (sequence-classification model, fast tokenizer). See ``registry.py``."""

from training.models.registry import MODEL_NAMES, LoadedModel, load_model

__all__ = ["MODEL_NAMES", "LoadedModel", "load_model"]
