"""Score texts with a serving bundle exactly as the server does, through the server's own engine.

The bundle is read by the torch-free :mod:`bundle_contract` (the one reader, checksums verified, the one
``BundleError``); ``server`` is the slim serving package (onnxruntime + tokenizers, no torch): reusing its
engine (text recipe, truncation, padding, [UNK] counting) means that the reference scores of a drift report
and the robustness figures mean the same thing as the fields of the server's prediction log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bundle_contract import BundleError, load_bundle
from server.engine import Engine, softmax

__all__ = ["BundleError", "BundlePredictor", "Scored"]


@dataclass
class Scored:
    """Model outputs for a list of texts, in input order."""

    probs: np.ndarray  # [n, num_labels] softmax probabilities
    n_tokens: np.ndarray  # [n] tokens fed to the model (after truncation, special tokens included)
    truncated: np.ndarray  # [n] bool
    unk_ratio: np.ndarray  # [n] unknown tokens / n_tokens, as in the server's prediction log

    @property
    def label_ids(self) -> np.ndarray:
        return np.asarray(self.probs.argmax(axis=1))

    @property
    def confidence(self) -> np.ndarray:
        return np.asarray(self.probs.max(axis=1))


class BundlePredictor:
    """A verified bundle and its engine; :meth:`score` runs length-sorted batches."""

    def __init__(self, bundle_dir: Path, threads: int = 1) -> None:
        bundle = load_bundle(bundle_dir)  # raises BundleError with a message that says what to do
        self.engine = Engine.load(bundle, intra_op_threads=threads)
        self.labels: list[str] = list(self.engine.labels)
        self.model_version = str(self.engine.model_version)

    def text(self, subject: str | None, body: str | None) -> str:
        return self.engine.build_text(subject, body)

    def score(self, texts: Sequence[str], batch_size: int = 32) -> Scored:
        n = len(texts)
        probs = np.zeros((n, len(self.labels)), dtype=np.float64)
        n_tokens = np.zeros(n, dtype=np.int64)
        truncated = np.zeros(n, dtype=bool)
        unk_ratio = np.zeros(n, dtype=np.float64)
        order = sorted(range(n), key=lambda i: len(texts[i]))
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            encoded = self.engine.tokenize([texts[i] for i in idx])
            probs[idx] = softmax(self.engine.infer(encoded))
            for row, enc in zip(idx, encoded, strict=True):
                n_tokens[row] = enc.n_tokens
                truncated[row] = enc.truncated
                unk_ratio[row] = enc.unk_count / enc.n_tokens if enc.n_tokens else 0.0
        return Scored(probs=probs, n_tokens=n_tokens, truncated=truncated, unk_ratio=unk_ratio)
