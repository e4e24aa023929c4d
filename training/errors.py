"""Errors of the training stage that a user can fix: each message says what is wrong and what to do."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of every error the training stage raises on purpose (printed as one line, exit code 2)."""


class ConfigError(TrainingError):
    """The composed config asks for something that does not exist (unknown model, missing path, bad value)."""


class ModelLoadError(TrainingError):
    """A pretrained model or tokenizer could not be loaded (offline, wrong id, broken folder)."""


class CheckpointError(TrainingError):
    """A checkpoint is missing, incomplete or does not match the current config."""
