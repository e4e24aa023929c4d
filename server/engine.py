"""The inference engine: owns the ONNX Runtime session and the ``tokenizers.Tokenizer`` of one bundle.

Nothing here is async: the service calls ``tokenize`` and ``infer`` from worker threads (ONNX Runtime and the
Rust tokenizer release the GIL), so the event loop is never blocked by model work.

Execution provider: ``EXECUTION_PROVIDER=auto`` runs a ``device: cuda`` bundle on CUDAExecutionProvider when
onnxruntime-gpu sees a GPU, anything else on CPU; when CUDA is asked for but unavailable the engine logs one
line and falls back to CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from bundle_contract import KNOWN_INPUTS, Bundle, BundleError, build_text, pad_batch

__all__ = ["Encoded", "Engine", "Prediction", "select_providers", "softmax"]

logger = logging.getLogger(__name__)

# characters kept per model token before tokenizing (see Engine.tokenize): generous, since a wordpiece token
# averages ~4 characters; a prefix that does not overflow is re-tokenized in full, so the cap is never wrong
CHARS_PER_TOKEN_CAP = 16
_CUT_SEARCH = 256  # how far back from the cap to look for whitespace to cut at

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
    needs_review: bool
    raw_scores: dict[str, float]


def select_providers(requested: str, device: str, available: Sequence[str]) -> list[str]:
    """ORT providers for ``EXECUTION_PROVIDER=requested`` and a bundle exported for ``device``."""
    want_cuda = requested == "cuda" or (requested == "auto" and device == "cuda")
    if want_cuda and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if want_cuda:
        logger.warning(
            "CUDAExecutionProvider is not available (providers: %s; install onnxruntime-gpu and run on a GPU "
            "machine); falling back to CPUExecutionProvider",
            ", ".join(available),
        )
    return ["CPUExecutionProvider"]


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
        self.providers = list(session.get_providers())
        self.device = "cuda" if self.providers[0] == "CUDAExecutionProvider" else "cpu"
        self.char_cap = self.max_length * CHARS_PER_TOKEN_CAP
        calibration = bundle.manifest.calibration
        self._temperature = calibration.temperature if calibration is not None else 1.0
        bias = calibration.bias if calibration is not None else None
        self._bias = np.asarray(bias if bias else [0.0] * len(self.labels), dtype=np.float64)
        review = bundle.manifest.review
        self.review_threshold = review.threshold if review is not None else None
        self._full_tokenizer: Tokenizer | None = None
        self._idle_session: ort.InferenceSession | None = None
        self.idle_threads = 0

    @staticmethod
    def _new_session(bundle: Bundle, threads: int, providers: list[str]) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 1:
            # several worker threads share few cores: spinning intra-op threads would steal each other's CPU
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(bundle.model_path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for unreadable/invalid models
            raise BundleError(
                f"ONNX Runtime cannot load {bundle.model_path}: {exc}; re-run `python -m export.onnx`"
            ) from None

    @classmethod
    def load(
        cls, bundle: Bundle, intra_op_threads: int = 1, provider: str = "auto", idle_threads: int = 0
    ) -> Engine:
        """Create the ORT session (``intra_op_threads`` threads per run on CPU; the provider chosen by
        :func:`select_providers`) and the bundle's tokenizer.

        ``idle_threads`` > ``intra_op_threads`` (CPU only) adds a second session with that many intra-op
        threads for :meth:`infer_idle`: the batcher uses it when a batch runs alone (nothing else in flight
        or queued), so one client gets all cores while concurrent batches keep one core each.
        """
        providers = select_providers(provider, bundle.manifest.device, ort.get_available_providers())
        session = cls._new_session(bundle, intra_op_threads, providers)
        try:
            tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception for malformed files
            raise BundleError(
                f"cannot load {bundle.tokenizer_path}: {exc}; re-run `python -m export.onnx`"
            ) from None
        tokenizer.no_padding()  # the engine pads each batch to its own longest input
        tokenizer.enable_truncation(max_length=bundle.manifest.max_length)
        cls._check_io(bundle, session)
        engine = cls(bundle, session, tokenizer)
        if engine.device == "cpu" and idle_threads > intra_op_threads:
            engine._idle_session = cls._new_session(bundle, idle_threads, providers)
            engine.idle_threads = idle_threads
        return engine

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
        """Tokenize with truncation to the model's max length; ``truncated`` flags inputs that lost tokens.

        Texts longer than ``char_cap`` characters are cut at a whitespace before the cap first: the words
        before a whitespace cut tokenize the same as in the full text, so when the cut text still overflows
        the max length, its kept tokens and its ``truncated`` flag are exactly the full text's. A cut text
        that does not overflow (very long tokens) is tokenized again in full. ``encode_batch`` releases the
        GIL (``encode`` does not).
        """
        cut = [_cut_at_space(t, self.char_cap) for t in texts]
        encodings = self._tokenizer.encode_batch(cut)
        redo = [
            i
            for i, (t, c, e) in enumerate(zip(texts, cut, encodings, strict=True))
            if c is not t and not e.overflowing
        ]
        if redo:
            for i, e in zip(redo, self._tokenizer.encode_batch([texts[i] for i in redo]), strict=True):
                encodings[i] = e
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

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` without truncation (for the 413 of ``truncate: false``)."""
        return len(self._untruncated().encode(text).ids)

    def _untruncated(self) -> Tokenizer:
        full = self._full_tokenizer
        if full is None:
            full = Tokenizer.from_str(self._tokenizer.to_str())
            full.no_truncation()
            self._full_tokenizer = full
        return full

    @property
    def has_idle_session(self) -> bool:
        return self._idle_session is not None

    def infer(self, batch: Sequence[Encoded]) -> np.ndarray:
        """Logits ``float32 [len(batch), num_labels]``; the batch is right-padded to its longest input."""
        return self._run(self._session, batch)

    def infer_idle(self, batch: Sequence[Encoded]) -> np.ndarray:
        """:meth:`infer` on the wide session (all ``idle_threads``), for a batch that runs alone."""
        return self._run(self._idle_session or self._session, batch)

    def _run(self, session: ort.InferenceSession, batch: Sequence[Encoded]) -> np.ndarray:
        available = pad_batch([e.ids for e in batch], [e.type_ids for e in batch], self._pad_id)
        feeds = {name: available[name] for name in self._input_names}
        (logits,) = session.run([self._output_name], feeds)
        return np.asarray(logits, dtype=np.float32)

    def predictions(self, logits: np.ndarray) -> list[Prediction]:
        """Label, confidence and per-label scores for each row of raw ``logits`` z, calibrated by the
        manifest (docs/contracts.md): ``c = (z + bias) / temperature``, scores = softmax(c), label =
        argmax(c), ``needs_review`` = confidence < review.threshold (false without a review block)."""
        raw = np.atleast_2d(logits).astype(np.float64)
        calibrated = (raw + self._bias) / self._temperature
        probs = softmax(calibrated)
        out: list[Prediction] = []
        for z, c, row in zip(raw, calibrated, probs, strict=True):
            label_id = int(c.argmax())
            confidence = float(row[label_id])
            out.append(
                Prediction(
                    label=self.labels[label_id],
                    label_id=label_id,
                    confidence=confidence,
                    scores={label: float(p) for label, p in zip(self.labels, row, strict=True)},
                    needs_review=self.review_threshold is not None and confidence < self.review_threshold,
                    raw_scores={label: float(v) for label, v in zip(self.labels, z, strict=True)},
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


def _cut_at_space(text: str, cap: int) -> str:
    """``text`` cut at the last whitespace before ``cap`` characters (``text`` itself when short enough or
    when there is no whitespace near the cap)."""
    if len(text) <= cap:
        return text
    for i in range(cap, max(0, cap - _CUT_SEARCH), -1):
        if text[i].isspace():
            return text[:i]
    return text


def _unk_id(tokenizer: Tokenizer) -> int | None:
    token = getattr(tokenizer.model, "unk_token", None)
    if isinstance(token, str):
        return tokenizer.token_to_id(token)
    unk_id = getattr(tokenizer.model, "unk_id", None)  # Unigram models
    return unk_id if isinstance(unk_id, int) else None
