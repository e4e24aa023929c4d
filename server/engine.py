"""The inference engine: owns the ONNX Runtime session and the ``tokenizers.Tokenizer`` of one bundle.

Nothing here is async: the service calls ``tokenize`` and ``infer`` from worker threads (ONNX Runtime and the
Rust tokenizer release the GIL), so the event loop is never blocked by model work.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from server.bundle import KNOWN_INPUTS, Bundle, BundleError
from server.text import build_text

__all__ = ["Encoded", "Engine", "Prediction", "softmax"]

logger = logging.getLogger(__name__)

_WARMUP_TEXT = "Warm-up request: the server checks that the model answers before it reports ready."


@dataclass(frozen=True, slots=True)
class Encoded:
    """One tokenized input, already truncated to the model's max length."""

    ids: list[int]
    type_ids: list[int]
    truncated: bool
    unk_count: int

    @property
    def n_tokens(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    label_id: int
    confidence: float
    scores: dict[str, float]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable for large logits)."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


class Engine:
    """Tokenizer + ORT session of one verified bundle. Thread-safe: ``InferenceSession.run`` may be called
    concurrently, and the tokenizer's settings are fixed at load time."""

    def __init__(self, bundle: Bundle, session: ort.InferenceSession, tokenizer: Tokenizer) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.labels: list[str] = list(bundle.manifest.labels)
        self.model_version = bundle.manifest.model_version
        self.max_length = bundle.manifest.max_length
        self._session = session
        self._tokenizer = tokenizer
        self._pad_id = bundle.manifest.pad_token_id
        self._input_names = [i.name for i in session.get_inputs()]
        self._output_name = bundle.manifest.output
        self.unk_id = _unk_id(tokenizer)

    @classmethod
    def load(cls, bundle: Bundle, intra_op_threads: int = 1) -> Engine:
        """Create the ORT session (CPU, ``intra_op_threads`` threads per run) and the bundle's tokenizer."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads > 1:
            # several worker threads share few cores: spinning intra-op threads would steal each other's CPU
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(
                str(bundle.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own exception types for unreadable/invalid models
            raise BundleError(
                f"ONNX Runtime cannot load {bundle.model_path}: {exc}; re-run `python -m export.onnx`"
            ) from None
        try:
            tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception for malformed files
            raise BundleError(
                f"cannot load {bundle.tokenizer_path}: {exc}; re-run `python -m export.onnx`"
            ) from None
        tokenizer.no_padding()  # the engine pads each batch to its own longest input
        tokenizer.enable_truncation(max_length=bundle.manifest.max_length)
        cls._check_io(bundle, session)
        return cls(bundle, session, tokenizer)

    @staticmethod
    def _check_io(bundle: Bundle, session: ort.InferenceSession) -> None:
        names = [i.name for i in session.get_inputs()]
        unknown = [n for n in names if n not in KNOWN_INPUTS]
        if unknown or "input_ids" not in names:
            raise BundleError(
                f"{bundle.model_path} has inputs {names}; the server feeds only {list(KNOWN_INPUTS)} "
                "(input_ids required); re-export the model"
            )
        outputs = [o.name for o in session.get_outputs()]
        if bundle.manifest.output not in outputs:
            raise BundleError(
                f"{bundle.model_path} has outputs {outputs}, manifest.json names "
                f"{bundle.manifest.output!r}; re-run `python -m export.onnx`"
            )

    def build_text(self, subject: str | None, body: str | None) -> str:
        """The model input text for one ticket, by the bundle's text recipe."""
        return build_text(subject, body, self.manifest.text_recipe)

    def tokenize(self, texts: Sequence[str]) -> list[Encoded]:
        """Tokenize with truncation to the model's max length; ``truncated`` flags inputs that lost tokens."""
        if len(texts) == 1:
            encodings = [self._tokenizer.encode(texts[0])]
        else:
            encodings = self._tokenizer.encode_batch(list(texts))
        unk = self.unk_id
        return [
            Encoded(
                ids=e.ids,
                type_ids=e.type_ids,
                truncated=bool(e.overflowing),
                unk_count=e.ids.count(unk) if unk is not None else 0,
            )
            for e in encodings
        ]

    def infer(self, batch: Sequence[Encoded]) -> np.ndarray:
        """Logits ``float32 [len(batch), num_labels]``; the batch is right-padded to its longest input."""
        n = len(batch)
        width = max(e.n_tokens for e in batch)
        input_ids = np.full((n, width), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((n, width), dtype=np.int64)
        token_type_ids = np.zeros((n, width), dtype=np.int64)
        for row, e in enumerate(batch):
            input_ids[row, : e.n_tokens] = e.ids
            attention_mask[row, : e.n_tokens] = 1
            token_type_ids[row, : e.n_tokens] = e.type_ids
        available = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        feeds = {name: available[name] for name in self._input_names}
        (logits,) = self._session.run([self._output_name], feeds)
        return np.asarray(logits, dtype=np.float32)

    def predictions(self, logits: np.ndarray) -> list[Prediction]:
        """Label, confidence and per-label scores for each row of ``logits``."""
        probs = softmax(np.atleast_2d(logits))
        out: list[Prediction] = []
        for row in probs:
            label_id = int(row.argmax())
            out.append(
                Prediction(
                    label=self.labels[label_id],
                    label_id=label_id,
                    confidence=float(row[label_id]),
                    scores={label: float(p) for label, p in zip(self.labels, row, strict=True)},
                )
            )
        return out

    def warm_up(self) -> None:
        """One full tokenize + inference pass, so the first real request does not pay ORT's lazy setup."""
        logits = self.infer(self.tokenize([_WARMUP_TEXT]))
        if logits.shape != (1, len(self.labels)) or not np.isfinite(logits).all():
            raise BundleError(
                f"{self.bundle.model_path} returned logits of shape {logits.shape} (expected "
                f"(1, {len(self.labels)}) and finite) for the warm-up input; the model does not match "
                "manifest.json labels; re-run `python -m export.onnx`"
            )
        logger.info("warm-up inference done (model %s)", self.model_version)


def _unk_id(tokenizer: Tokenizer) -> int | None:
    token = getattr(tokenizer.model, "unk_token", None)
    if isinstance(token, str):
        return tokenizer.token_to_id(token)
    unk_id = getattr(tokenizer.model, "unk_id", None)  # Unigram models
    return unk_id if isinstance(unk_id, int) else None
