"""The verification gate: nothing reaches the server unless these checks pass on the validation split.

1. Tokenizer parity: the bundle's ``tokenizer.json`` on the server's text recipe (subject/body -> text) yields
   exactly the token ids the training tokenizer yields on the prepared ``text`` column.
2. ONNX fp32 vs PyTorch: max |logit difference| <= ``max_logit_diff`` and identical argmax on every example.
3. int8 vs fp32 (when quantized): macro-F1 drop <= ``max_f1_drop_points`` overall and in every language with
   >= ``min_language_examples`` examples; argmax agreement >= ``min_non_tie_agreement`` on the examples where
   fp32's top-1 minus top-2 probability is >= ``tie_margin``. Raw agreement is reported, not gated: low-margin
   models flip near-ties under int8 without losing any F1.

The pure check functions take logits as numpy arrays (unit-testable); the runners below produce those logits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import DataError

logger = logging.getLogger(__name__)

Array = np.ndarray


@dataclass(frozen=True)
class Thresholds:
    """Gate thresholds (all configurable from the CLI)."""

    max_logit_diff: float = 1e-3
    max_f1_drop_points: float = 1.0
    min_language_examples: int = 50
    tie_margin: float = 0.1
    min_non_tie_agreement: float = 0.99


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float | None
    threshold: str
    detail: str = ""

    def summary(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:.6g}"
        extra = f"; {self.detail}" if self.detail else ""
        return f"{self.name} = {value} (needs {self.threshold}){extra}"


@dataclass
class GateReport:
    checks: list[Check]
    n_examples: int
    thresholds: Thresholds
    metrics: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_manifest(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "n_examples": self.n_examples,
            "thresholds": asdict(self.thresholds),
            "checks": [asdict(c) for c in self.checks],
        }

    def to_markdown(self, title: str = "Export verification report") -> str:
        lines = [
            f"# {title}",
            "",
            f"Result: **{'PASSED' if self.passed else 'FAILED'}** on {self.n_examples} validation examples.",
            "",
            "| check | value | threshold | result | detail |",
            "|---|---:|---|---|---|",
        ]
        for c in self.checks:
            value = "n/a" if c.value is None else f"{c.value:.6g}"
            lines.append(
                f"| {c.name} | {value} | {c.threshold} | {'ok' if c.passed else 'FAIL'} | {c.detail} |"
            )
        lines += ["", "| model | macro-F1 | accuracy | n |", "|---|---:|---:|---:|"]
        for name in ("torch", "fp32", "int8"):
            m = self.metrics.get(name)
            if m:
                lines.append(f"| {name} | {m['macro_f1']:.4f} | {m['accuracy']:.4f} | {m['n']} |")
        languages = sorted(
            {lang for name in ("fp32", "int8") for lang in self.metrics.get(name, {}).get("per_language", {})}
        )
        if languages:
            lines += [
                "",
                "| language | n | fp32 macro-F1 | int8 macro-F1 | gated |",
                "|---|---:|---:|---:|---|",
            ]
            for lang in languages:
                fp = self.metrics["fp32"]["per_language"][lang]
                q = self.metrics.get("int8", {}).get("per_language", {}).get(lang)
                gated = "yes" if fp["n"] >= self.thresholds.min_language_examples and q else "no"
                q_f1 = f"{q['macro_f1']:.4f}" if q else "-"
                lines.append(f"| {lang} | {fp['n']} | {fp['macro_f1']:.4f} | {q_f1} | {gated} |")
        agreement = self.metrics.get("agreement")
        if agreement:
            lines += [
                "",
                f"int8 vs fp32 argmax agreement: raw {agreement['raw']:.4f}, "
                f"non-tie {_fmt(agreement['non_tie'])} on {agreement['n_non_tie']} examples "
                f"(fp32 top-1 minus top-2 probability >= {self.thresholds.tie_margin}).",
            ]
        return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# --------------------------------------------------------------------------------------------- pure checks


def softmax(logits: Array) -> Array:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def classification_metrics(
    y_true: Array, y_pred: Array, languages: Sequence[str], n_labels: int
) -> dict[str, Any]:
    """Macro-F1 and accuracy overall and per language (macro over all labels, absent ones count as 0)."""
    from sklearn.metrics import accuracy_score, f1_score

    label_ids = list(range(n_labels))

    def scores(mask: Array) -> dict[str, Any]:
        t, p = y_true[mask], y_pred[mask]
        return {
            "n": int(mask.sum()),
            "macro_f1": float(f1_score(t, p, labels=label_ids, average="macro", zero_division=0)),
            "accuracy": float(accuracy_score(t, p)),
        }

    lang = np.asarray(languages)
    result = scores(np.ones(len(y_true), dtype=bool))
    result["per_language"] = {str(code): scores(lang == code) for code in sorted(set(languages))}
    return result


def check_onnx_vs_torch(torch_logits: Array, onnx_logits: Array, th: Thresholds) -> list[Check]:
    diff = float(np.abs(torch_logits - onnx_logits).max()) if len(torch_logits) else 0.0
    flips = int((torch_logits.argmax(axis=1) != onnx_logits.argmax(axis=1)).sum())
    return [
        Check(
            "fp32 vs torch max abs logit diff",
            diff <= th.max_logit_diff,
            diff,
            f"<= {th.max_logit_diff:g}",
            "" if diff <= th.max_logit_diff else f"exceeds the limit by {diff - th.max_logit_diff:.6g}",
        ),
        Check(
            "fp32 vs torch argmax mismatches",
            flips == 0,
            float(flips),
            "== 0",
            "" if flips == 0 else f"{flips} of {len(torch_logits)} predictions differ",
        ),
    ]


def check_int8(
    fp32_logits: Array,
    int8_logits: Array,
    y_true: Array,
    languages: Sequence[str],
    n_labels: int,
    th: Thresholds,
) -> tuple[list[Check], dict[str, Any]]:
    """int8 vs fp32 checks; returns (checks, metrics with keys fp32/int8/agreement)."""
    fp_pred, q_pred = fp32_logits.argmax(axis=1), int8_logits.argmax(axis=1)
    fp_m = classification_metrics(y_true, fp_pred, languages, n_labels)
    q_m = classification_metrics(y_true, q_pred, languages, n_labels)

    checks: list[Check] = []
    limit = th.max_f1_drop_points
    drop = (fp_m["macro_f1"] - q_m["macro_f1"]) * 100
    checks.append(
        Check(
            "int8 macro-F1 drop (points), overall",
            drop <= limit,
            drop,
            f"<= {limit:g}",
            f"fp32 {fp_m['macro_f1']:.4f} -> int8 {q_m['macro_f1']:.4f}"
            + ("" if drop <= limit else f"; exceeds the limit by {drop - limit:.3g} points"),
        )
    )
    for code, fp_lang in fp_m["per_language"].items():
        if fp_lang["n"] < th.min_language_examples:
            continue
        q_lang = q_m["per_language"][code]
        lang_drop = (fp_lang["macro_f1"] - q_lang["macro_f1"]) * 100
        checks.append(
            Check(
                f"int8 macro-F1 drop (points), {code}",
                lang_drop <= limit,
                lang_drop,
                f"<= {limit:g}",
                f"n={fp_lang['n']}, fp32 {fp_lang['macro_f1']:.4f} -> int8 {q_lang['macro_f1']:.4f}"
                + ("" if lang_drop <= limit else f"; exceeds the limit by {lang_drop - limit:.3g} points"),
            )
        )

    probs = np.sort(softmax(fp32_logits), axis=1)
    margin = probs[:, -1] - probs[:, -2] if probs.shape[1] > 1 else np.ones(len(probs))
    non_tie = margin >= th.tie_margin
    agree = fp_pred == q_pred
    n_non_tie = int(non_tie.sum())
    non_tie_agreement = float(agree[non_tie].mean()) if n_non_tie else None
    raw = float(agree.mean()) if len(agree) else 1.0
    if non_tie_agreement is None:
        checks.append(
            Check(
                "int8 vs fp32 non-tie argmax agreement",
                True,
                None,
                f">= {th.min_non_tie_agreement:g}",
                f"not informative: no example has fp32 margin >= {th.tie_margin:g}",
            )
        )
    else:
        ok = non_tie_agreement >= th.min_non_tie_agreement
        checks.append(
            Check(
                "int8 vs fp32 non-tie argmax agreement",
                ok,
                non_tie_agreement,
                f">= {th.min_non_tie_agreement:g}",
                f"{n_non_tie} non-tie examples; raw agreement {raw:.4f}"
                + (
                    ""
                    if ok
                    else f"; short of the limit by {th.min_non_tie_agreement - non_tie_agreement:.4g}"
                ),
            )
        )
    agreement = {
        "raw": raw,
        "non_tie": non_tie_agreement,
        "n_non_tie": n_non_tie,
        "tie_margin": th.tie_margin,
        "max_abs_logit_diff": float(np.abs(fp32_logits - int8_logits).max()) if len(fp32_logits) else 0.0,
    }
    return checks, {"fp32": fp_m, "int8": q_m, "agreement": agreement}


def evaluate_gate(
    *,
    torch_logits: Array,
    fp32_logits: Array,
    int8_logits: Array | None,
    y_true: Array,
    languages: Sequence[str],
    labels: list[str],
    thresholds: Thresholds,
    token_mismatches: int = 0,
) -> GateReport:
    """Run every check and collect metrics into a :class:`GateReport`."""
    n = len(y_true)
    checks = [
        Check(
            "tokenizer parity (bundle vs training), mismatching examples",
            token_mismatches == 0,
            float(token_mismatches),
            "== 0",
            ""
            if token_mismatches == 0
            else f"{token_mismatches} of {n} texts tokenize differently: the server would see other ids",
        )
    ]
    checks += check_onnx_vs_torch(torch_logits, fp32_logits, thresholds)
    metrics: dict[str, Any] = {
        "torch": {
            k: v
            for k, v in classification_metrics(
                y_true, torch_logits.argmax(axis=1), languages, len(labels)
            ).items()
            if k != "per_language"
        },
    }
    if int8_logits is None:
        metrics["fp32"] = classification_metrics(y_true, fp32_logits.argmax(axis=1), languages, len(labels))
    else:
        int8_checks, int8_metrics = check_int8(
            fp32_logits, int8_logits, y_true, languages, len(labels), thresholds
        )
        checks += int8_checks
        metrics.update(int8_metrics)
    return GateReport(checks=checks, n_examples=n, thresholds=thresholds, metrics=metrics, labels=labels)


# --------------------------------------------------------------------------------------------- runners


@dataclass(frozen=True)
class ValidationSet:
    """The validation split as both sides see it: training's ``text``, the subject/body the server gets."""

    texts: list[str]
    subjects: list[str]
    bodies: list[str]
    y_true: Array
    languages: list[str]
    data_dir: Path


def load_validation(data_dir: Path, labels: list[str], limit: int | None = None) -> ValidationSet:
    """Read the ``val`` split of a prepared-data dir (docs/contracts.md section 2) via ``training.data``."""
    from training.data import load_prepared

    if not data_dir.is_dir():
        raise DataError(
            f"validation data not found: {data_dir} is not a directory; run `python -m training.data "
            "prepare` or pass --data DIR (a prepared-data dir with val.parquet)"
        )
    try:
        prepared = load_prepared(data_dir)
    except Exception as exc:  # training.data raises its own error types, pandas/pyarrow theirs
        raise DataError(f"cannot load prepared data from {data_dir}: {exc}") from exc
    if list(prepared.labels) != list(labels):
        raise DataError(
            f"label order differs: checkpoint {labels} vs prepared data {list(prepared.labels)} in "
            f"{data_dir}; export against the data the checkpoint was trained on"
        )
    val = prepared.val
    if limit is not None:
        val = val.iloc[:limit]
    if val.empty:
        raise DataError(f"the validation split in {data_dir} is empty; the gate needs examples")
    return ValidationSet(
        texts=[str(t) for t in val["text"]],
        subjects=["" if s is None else str(s) for s in val["subject"]],
        bodies=["" if b is None else str(b) for b in val["body"]],
        y_true=val["label_id"].to_numpy(dtype=np.int64),
        languages=[str(x) for x in val["language"]],
        data_dir=data_dir,
    )


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding); both runtimes use the same batches."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(
    ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]], pad_id: int
) -> dict[str, Array]:
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    types = np.zeros((len(ids), width), dtype=np.int64)
    for row, (seq, tseq) in enumerate(zip(ids, type_ids, strict=True)):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
        types[row, : len(tseq)] = tseq
    return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": types}


@dataclass(frozen=True)
class Encoded:
    ids: list[list[int]]
    type_ids: list[list[int]]


def encode_with_bundle_tokenizer(tokenizer_path: Path, texts: Sequence[str], max_length: int) -> Encoded:
    """Tokenize exactly as the server will: the bundle's tokenizer.json, truncation to ``max_length``."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    encodings = tokenizer.encode_batch(list(texts))
    return Encoded([e.ids for e in encodings], [e.type_ids for e in encodings])


def run_batches(
    encoded: Encoded,
    pad_id: int,
    batch_size: int,
    predict: Callable[[dict[str, Array]], Array],
) -> Array:
    outputs: dict[int, Array] = {}
    for batch in length_sorted_batches([len(x) for x in encoded.ids], batch_size):
        feed = pad_batch([encoded.ids[i] for i in batch], [encoded.type_ids[i] for i in batch], pad_id)
        logits = predict(feed)
        for row, index in enumerate(batch):
            outputs[index] = logits[row]
    return np.stack([outputs[i] for i in range(len(encoded.ids))]).astype(np.float32)


def onnx_logits(
    model_path: Path, encoded: Encoded, pad_id: int, batch_size: int, threads: int | None
) -> Array:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def predict(feed: Mapping[str, Array]) -> Array:
        return np.asarray(session.run(["logits"], {k: feed[k] for k in names})[0])

    return run_batches(encoded, pad_id, batch_size, predict)


@dataclass(frozen=True)
class TorchSide:
    logits: Array
    encoded: Encoded
    pad_token: str
    pad_token_id: int
    uses_token_type_ids: bool


def torch_logits(checkpoint_dir: Path, texts: Sequence[str], max_length: int, batch_size: int) -> TorchSide:
    """PyTorch eager logits with the checkpoint's own (training) tokenizer on the prepared ``text`` column."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint_dir), local_files_only=True)
    if not tokenizer.is_fast:
        raise DataError(
            f"{checkpoint_dir} has a slow tokenizer; the bundle needs a fast one (tokenizer.json)"
        )
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint_dir), local_files_only=True)
    model.eval()
    enc = tokenizer(
        list(texts), truncation=True, max_length=max_length, padding=False, return_token_type_ids=True
    )
    encoded = Encoded([list(x) for x in enc["input_ids"]], [list(x) for x in enc["token_type_ids"]])
    pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    uses_types = (
        "token_type_ids" in tokenizer.model_input_names and getattr(model.config, "type_vocab_size", 0) > 0
    )

    def predict(feed: Mapping[str, Array]) -> Array:
        inputs = {k: torch.from_numpy(v) for k, v in feed.items() if k != "token_type_ids" or uses_types}
        with torch.inference_mode():
            return np.asarray(model(**inputs).logits.float().numpy())

    logits = run_batches(encoded, pad_id, batch_size, predict)
    return TorchSide(logits, encoded, str(tokenizer.pad_token), pad_id, uses_types)


def token_mismatches(a: Encoded, b: Encoded) -> int:
    return sum(x != y for x, y in zip(a.ids, b.ids, strict=True))
