"""The verification gate: nothing reaches the server unless these checks pass (docs/export.md).

1. Tokenizer parity: the bundle's ``tokenizer.json`` on the server's text recipe (subject/body -> text) yields
   exactly the token ids the training tokenizer yields on the prepared ``text`` column.
2. ONNX fp32 vs PyTorch: max |logit difference| <= ``max_logit_diff`` and identical argmax on every example.
3. int8 vs fp32 (when quantized), with statistics that hold at small n:
   - macro-F1 drop overall and in every language with >= ``min_language_examples`` examples: a paired
     bootstrap over the validation rows gives a one-sided ``confidence`` interval; the check fails when its
     lower bound exceeds ``max_f1_drop_points`` (a drop that is not noise), or when the point estimate exceeds
     it and n is large enough that one flipped ticket moves macro-F1 by at most half the limit
     (:func:`min_examples_for_f1_drop`);
   - argmax agreement on non-ties (fp32 top-1 minus top-2 probability >= ``tie_margin``): with at least
     1 / (1 - ``min_non_tie_agreement``) non-ties (100 at 0.99) the observed agreement must reach the
     threshold; at any n an exact Clopper-Pearson bound fails a flip rate that is significantly above the
     allowed one. Below that n the check cannot detect the allowed flip rate itself, and the report says so.
   Raw agreement is reported, not gated: low-margin models flip near-ties under int8 without losing F1.
4. Quality floor (export.pipeline): the served model's test macro-F1 must reach the TF-IDF baseline's.

The pure check functions take logits as numpy arrays (unit-testable); the runners below produce those logits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bundle_contract import pad_batch  # the contract's padding rule, as the server pads
from export.errors import DataError, ExportError

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
    #: one-sided confidence of the bootstrap (F1 drop) and Clopper-Pearson (flip rate) bounds
    confidence: float = 0.95
    bootstrap_resamples: int = 1000
    seed: int = 0


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
    #: what was switched off or loosened against production (e.g. the quality floor); empty = production gate
    loosened: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def production(self) -> bool:
        """True when every check ran at its production threshold (nothing loosened or waived)."""
        return not self.loosened

    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def verdict(self) -> str:
        if not self.passed:
            return "FAILED"
        return "PASSED" if self.production else "PASSED WITH A LOOSENED GATE"

    def to_manifest(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "production": self.production,
            "loosened": list(self.loosened),
            "n_examples": self.n_examples,
            "thresholds": asdict(self.thresholds),
            "checks": [asdict(c) for c in self.checks],
        }

    def to_markdown(self, title: str = "Export verification report") -> str:
        lines = [
            f"# {title}",
            "",
            f"Result: **{self.verdict()}** on {self.n_examples} validation examples.",
        ]
        if self.loosened:
            lines += ["", "Not the production gate: " + "; ".join(self.loosened) + "."]
        lines += [
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
            lines += ["", *self._detectability()]
        lines += self._floor_markdown() + self._calibration_markdown()
        return "\n".join(lines) + "\n"

    def _detectability(self) -> list[str]:
        """What the int8 checks can and cannot detect at this n (docs/export.md, "Statistics")."""
        th = self.thresholds
        pct = round(th.confidence * 100)
        allowed = 1.0 - th.min_non_tie_agreement
        out = ["## What the int8 checks can detect at this n", ""]
        f1 = self.metrics.get("f1_drop", {}).get("overall")
        if f1:
            n = f1["n"]
            min_n = min_examples_for_f1_drop(th.max_f1_drop_points)
            out.append(
                f"- macro-F1 drop: {n} examples, one flipped ticket moves macro-F1 by "
                f"~{f1['one_flip_points']:.2g} points; paired bootstrap ({th.bootstrap_resamples} resamples, "
                f"seed {th.seed}) {pct}% bounds "
                f"[{f1['lower']:.3g}, {f1['upper']:.3g}] points. "
                + (
                    f"n >= {min_n}: a measured drop above {th.max_f1_drop_points:g} point(s) fails."
                    if f1["point_gated"]
                    else f"n < {min_n}: a drop of {th.max_f1_drop_points:g} point(s) is below what this n "
                    f"resolves; only a drop whose {pct}% lower bound exceeds it (several harmful flips) "
                    "fails."
                )
            )
        agreement = self.metrics.get("agreement") or {}
        power = agreement.get("power") or {}
        if power.get("n"):
            n = power["n"]
            start = power["fails_from_flips"]
            fails = f"fails from {start} flips" if start is not None else "cannot fail at all"
            cannot = (
                f" Below {agreement['min_non_ties']} non-ties it cannot detect a {allowed:.0%} flip rate "
                f"(exact {pct}% Clopper-Pearson bound instead)."
                if n < agreement["min_non_ties"]
                else ""
            )
            out.append(
                f"- agreement: {n} non-ties, {fails}; a true flip rate of {allowed:.0%} is caught with "
                f"probability {power['p_catch_allowed_rate']:.0%}, {5 * allowed:.0%} with "
                f"{power['p_catch_5x_allowed_rate']:.0%}, and a flip rate of "
                f"{power['rate_caught_80pct']:.1%} 80% of the time.{cannot}"
            )
        elif agreement:
            out.append("- agreement: no non-tie example, so the check cannot detect anything at this n.")
        return out

    def _floor_markdown(self) -> list[str]:
        floor = self.metrics.get("quality_floor")
        if not floor:
            return []
        lines = [
            "",
            f"## Quality floor ({floor['split']} split, served model vs TF-IDF baseline)",
            "",
            "| model | macro-F1 | accuracy | n |",
            "|---|---:|---:|---:|",
            f"| served ({floor['served']}) | {floor['model_macro_f1']:.4f} | {floor['model_accuracy']:.4f} "
            f"| {floor['n']} |",
            f"| TF-IDF baseline (fitted on {floor['n_train']} train rows) | {floor['baseline_macro_f1']:.4f} "
            f"| {floor['baseline_accuracy']:.4f} | {floor['n']} |",
        ]
        if floor.get("note"):
            lines += ["", floor["note"]]
        return lines

    def _calibration_markdown(self) -> list[str]:
        cal = self.metrics.get("calibration")
        if not cal:
            return []
        lines = [
            "",
            f"## Calibration (fitted on {cal['fitted_on']}, n={cal['n']}, served logits at batch "
            f"{cal['batch_size']})",
            "",
            f"temperature {cal['temperature']:.4g}, bias {[round(b, 3) for b in cal['bias']]}, "
            + (
                f"review threshold {cal['review_threshold']:.4g} for {cal['target_accuracy']:.0%} accuracy"
                if cal.get("review_threshold") is not None
                else "no review band"
            )
            + f" ({cal['mode']}).",
        ]
        for split, report in cal.get("splits", {}).items():
            cov = next((k for k in report if k.startswith("raw_coverage_at_")), None)
            target = cov.rsplit("_", 1)[-1] if cov else "?"
            lines += [
                "",
                f"| {split} (n={report['n']}) | ECE | coverage at {target}% accuracy | macro-F1 | accuracy |",
                "|---|---:|---:|---:|---:|",
            ]
            for stage in ("raw", "calibrated"):
                lines.append(
                    f"| {stage} | {report[f'{stage}_ece']:.4f} | "
                    f"{report[f'{stage}_coverage_at_{target}'] if cov else float('nan'):.4f} | "
                    f"{report[f'{stage}_macro_f1']:.4f} | {report[f'{stage}_accuracy']:.4f} |"
                )
            if "review_band_coverage" in report:
                lines.append(
                    f"\nreview band on {split}: {report['review_band_coverage']:.1%} auto-triaged at "
                    f"{report['review_band_accuracy']:.1%} accuracy."
                )
        return lines


class GateFailedError(ExportError):
    """The verification gate failed: no bundle was written. Carries the full report (the CLI exits 1)."""

    def __init__(self, report: GateReport) -> None:
        self.report = report
        failed = ", ".join(c.summary() for c in report.failed_checks())
        super().__init__(f"verification gate failed, no bundle written: {failed}")


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
    from sklearn.metrics import accuracy_score

    from quality.calibration import macro_f1

    def scores(mask: Array) -> dict[str, Any]:
        t, p = y_true[mask], y_pred[mask]
        return {
            "n": int(mask.sum()),
            "macro_f1": macro_f1(t, p, n_labels),
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


def paired_bootstrap_f1_drop(
    y_true: Array, a_pred: Array, b_pred: Array, n_labels: int, resamples: int, seed: int
) -> Array:
    """``resamples`` macro-F1 drops (points, a minus b) on the same bootstrap resamples of the rows.

    Pairing (both models scored on each resample) keeps the noise of *which* tickets were sampled out of the
    difference: only the rows where the two models disagree move it. Macro-F1 over every label, a class with
    no true positive scores 0 (as :func:`classification_metrics`).
    """
    y = np.asarray(y_true)
    n = len(y)
    if n == 0:
        return np.zeros(resamples)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)  # (resamples, n)

    def macro_f1(pred: Array) -> Array:
        scores = np.zeros(resamples)
        for c in range(n_labels):
            tp = weights @ ((pred == c) & (y == c))
            fp = weights @ ((pred == c) & (y != c))
            fn = weights @ ((pred != c) & (y == c))
            denom = 2 * tp + fp + fn
            scores += np.where(tp > 0, 2 * tp / np.where(denom > 0, denom, 1.0), 0.0)
        return scores / n_labels

    return np.asarray((macro_f1(np.asarray(a_pred)) - macro_f1(np.asarray(b_pred))) * 100)


def min_examples_for_f1_drop(max_drop_points: float) -> int:
    """The n from which the point estimate of the F1 drop is gated: one flip then moves macro-F1 by at most
    about half the limit (one flipped ticket moves macro-F1 by roughly 100 / n points, ~2 at n = 50)."""
    return math.ceil(200.0 / max_drop_points) if max_drop_points > 0 else 0


def min_non_ties_for_agreement(min_agreement: float) -> int:
    """The fewest non-ties at which one flip still leaves agreement >= ``min_agreement`` (100 at 0.99)."""
    allowed = 1.0 - min_agreement
    return math.ceil(1.0 / allowed - 1e-9) if allowed > 0 else 0


def flip_rate_lower_bound(flips: int, n: int, confidence: float) -> float:
    """One-sided exact (Clopper-Pearson) lower confidence bound of a binomial rate."""
    from scipy.stats import beta

    if flips <= 0 or n <= 0:
        return 0.0
    return float(beta.ppf(1.0 - confidence, flips, n - flips + 1))


def agreement_fails(flips: int, n: int, th: Thresholds) -> bool:
    """The agreement rule: the flip rate is significantly above the allowed one, or (from the minimum n on)
    the observed agreement is below the threshold."""
    if n == 0:
        return False
    allowed = 1.0 - th.min_non_tie_agreement
    if flip_rate_lower_bound(flips, n, th.confidence) > allowed:
        return True
    return (
        n >= min_non_ties_for_agreement(th.min_non_tie_agreement)
        and (n - flips) / n < th.min_non_tie_agreement
    )


def agreement_power(n: int, th: Thresholds) -> dict[str, Any]:
    """What the agreement rule can detect with ``n`` non-ties: the flip count from which it fails, the chance
    that it catches a model whose true flip rate is the allowed one (1% at 0.99) or 5x that, and the true flip
    rate it catches 80% of the time."""
    from scipy.stats import binom

    if n == 0:
        return {"n": 0, "fails_from_flips": None}
    fails_from = next((m for m in range(n + 1) if agreement_fails(m, n, th)), n + 1)
    allowed = 1.0 - th.min_non_tie_agreement

    def caught(rate: float) -> float:
        return float(binom.sf(fails_from - 1, n, rate)) if fails_from <= n else 0.0

    lo, hi = 0.0, 1.0
    for _ in range(50):  # caught() rises with the rate: bisect for 80%
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if caught(mid) < 0.8 else (lo, mid)
    return {
        "n": n,
        "fails_from_flips": fails_from if fails_from <= n else None,
        "p_catch_allowed_rate": caught(allowed),
        "p_catch_5x_allowed_rate": caught(min(1.0, 5 * allowed)),
        "rate_caught_80pct": hi,
    }


def _f1_drop_check(
    name: str,
    y: Array,
    fp_pred: Array,
    q_pred: Array,
    n_labels: int,
    th: Thresholds,
) -> tuple[Check, dict[str, Any]]:
    from sklearn.metrics import f1_score

    labels = list(range(n_labels))
    n = len(y)
    fp_f1 = float(f1_score(y, fp_pred, labels=labels, average="macro", zero_division=0))
    q_f1 = float(f1_score(y, q_pred, labels=labels, average="macro", zero_division=0))
    drop = (fp_f1 - q_f1) * 100
    drops = paired_bootstrap_f1_drop(y, fp_pred, q_pred, n_labels, th.bootstrap_resamples, th.seed)
    lower = float(np.quantile(drops, 1.0 - th.confidence))
    upper = float(np.quantile(drops, th.confidence))
    limit = th.max_f1_drop_points
    min_n = min_examples_for_f1_drop(limit)
    point_gated = n >= min_n
    significant = lower > limit
    failed = significant or (point_gated and drop > limit)
    pct = round(th.confidence * 100)
    detail = f"n={n}, fp32 {fp_f1:.4f} -> int8 {q_f1:.4f}; {pct}% bootstrap bounds [{lower:.3g}, {upper:.3g}]"
    if point_gated:
        detail += f"; point estimate gated (n >= {min_n})"
    else:
        detail += (
            f"; n < {min_n}: one flip moves macro-F1 by ~{100 / max(n, 1):.2g} points, so only a drop whose "
            f"{pct}% lower bound exceeds {limit:g} fails"
        )
    if failed:
        excess = (lower if significant and not point_gated else drop) - limit
        detail += f"; exceeds the limit by {excess:.3g} points" + (
            " (lower bound)" if not point_gated else ""
        )
    check = Check(
        name,
        not failed,
        drop,
        f"<= {limit:g} ({pct}% lower bound; point estimate from n >= {min_n})",
        detail,
    )
    stats = {
        "n": n,
        "drop_points": drop,
        "lower": lower,
        "upper": upper,
        "point_gated": point_gated,
        "one_flip_points": 100 / max(n, 1),
    }
    return check, stats


def check_int8(
    fp32_logits: Array,
    int8_logits: Array,
    y_true: Array,
    languages: Sequence[str],
    n_labels: int,
    th: Thresholds,
) -> tuple[list[Check], dict[str, Any]]:
    """int8 vs fp32 checks; returns (checks, metrics with keys fp32/int8/agreement/f1_drop)."""
    fp_pred, q_pred = fp32_logits.argmax(axis=1), int8_logits.argmax(axis=1)
    fp_m = classification_metrics(y_true, fp_pred, languages, n_labels)
    q_m = classification_metrics(y_true, q_pred, languages, n_labels)

    checks: list[Check] = []
    f1_stats: dict[str, Any] = {}
    check, f1_stats["overall"] = _f1_drop_check(
        "int8 macro-F1 drop (points), overall", y_true, fp_pred, q_pred, n_labels, th
    )
    checks.append(check)
    lang = np.asarray(languages)
    for code, fp_lang in fp_m["per_language"].items():
        if fp_lang["n"] < th.min_language_examples:
            continue
        mask = lang == code
        check, f1_stats[code] = _f1_drop_check(
            f"int8 macro-F1 drop (points), {code}", y_true[mask], fp_pred[mask], q_pred[mask], n_labels, th
        )
        checks.append(check)

    probs = np.sort(softmax(fp32_logits), axis=1)
    margin = probs[:, -1] - probs[:, -2] if probs.shape[1] > 1 else np.ones(len(probs))
    non_tie = margin >= th.tie_margin
    agree = fp_pred == q_pred
    n_non_tie = int(non_tie.sum())
    flips = int(n_non_tie - agree[non_tie].sum())
    non_tie_agreement = float(agree[non_tie].mean()) if n_non_tie else None
    raw = float(agree.mean()) if len(agree) else 1.0
    min_n = min_non_ties_for_agreement(th.min_non_tie_agreement)
    allowed = 1.0 - th.min_non_tie_agreement
    pct = round(th.confidence * 100)
    threshold = f">= {th.min_non_tie_agreement:g} (from {min_n} non-ties; below: {pct}% exact bound)"
    power = agreement_power(n_non_tie, th)
    if non_tie_agreement is None:
        checks.append(
            Check(
                "int8 vs fp32 non-tie argmax agreement",
                True,
                None,
                threshold,
                f"not informative: no example has fp32 margin >= {th.tie_margin:g}",
            )
        )
    else:
        failed = agreement_fails(flips, n_non_tie, th)
        bound = flip_rate_lower_bound(flips, n_non_tie, th.confidence)
        detail = f"{flips} flips in {n_non_tie} non-tie examples; raw agreement {raw:.4f}"
        if n_non_tie < min_n:
            detail += (
                f"; below {min_n} non-ties the check cannot detect a {allowed:.0%} flip rate: it fails only "
                f"when the {pct}% Clopper-Pearson lower bound of the flip rate ({bound:.3g}) exceeds "
                f"{allowed:g}"
            )
        if failed:
            if non_tie_agreement < th.min_non_tie_agreement:
                detail += f"; short of the limit by {th.min_non_tie_agreement - non_tie_agreement:.4g}"
            if bound > allowed:
                detail += f"; flip rate significantly above {allowed:g} (lower bound {bound:.3g})"
        checks.append(
            Check("int8 vs fp32 non-tie argmax agreement", not failed, non_tie_agreement, threshold, detail)
        )
    agreement = {
        "raw": raw,
        "non_tie": non_tie_agreement,
        "n_non_tie": n_non_tie,
        "flips_non_tie": flips,
        "tie_margin": th.tie_margin,
        "max_abs_logit_diff": float(np.abs(fp32_logits - int8_logits).max()) if len(fp32_logits) else 0.0,
        "min_non_ties": min_n,
        "power": power,
    }
    return checks, {"fp32": fp_m, "int8": q_m, "agreement": agreement, "f1_drop": f1_stats}


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


def load_prepared_data(data_dir: Path, labels: list[str]) -> Any:
    """The prepared-data dir (docs/contracts.md section 2) via ``training.data``, label order checked."""
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
    return prepared


def split_set(prepared: Any, split: str, data_dir: Path, limit: int | None = None) -> ValidationSet:
    """One split (``train``/``val``/``test``) of loaded prepared data, first ``limit`` rows; may be empty."""
    frame = getattr(prepared, split)
    if limit is not None:
        frame = frame.iloc[:limit]
    return ValidationSet(
        texts=[str(t) for t in frame["text"]],
        subjects=["" if s is None else str(s) for s in frame["subject"]],
        bodies=["" if b is None else str(b) for b in frame["body"]],
        y_true=frame["label_id"].to_numpy(dtype=np.int64),
        languages=[str(x) for x in frame["language"]],
        data_dir=data_dir,
    )


def load_validation(data_dir: Path, labels: list[str], limit: int | None = None) -> ValidationSet:
    """Read the ``val`` split of a prepared-data dir (docs/contracts.md section 2) via ``training.data``."""
    val = split_set(load_prepared_data(data_dir, labels), "val", data_dir, limit)
    if not val.texts:
        raise DataError(f"the validation split in {data_dir} is empty; the gate needs examples")
    return val


def loosened_thresholds(th: Thresholds) -> list[str]:
    """Every threshold set looser than production (``Thresholds()``), as ``name value (production value)``."""
    production = Thresholds()
    looser_if_larger = ("max_logit_diff", "max_f1_drop_points", "min_language_examples", "tie_margin")
    looser_if_smaller = ("min_non_tie_agreement", "confidence")
    out = []
    for name in looser_if_larger + looser_if_smaller:
        value, default = getattr(th, name), getattr(production, name)
        if (name in looser_if_larger and value > default) or (name in looser_if_smaller and value < default):
            out.append(f"{name} {value:g} (production {default:g})")
    return out


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding); both runtimes use the same batches."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


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
    from transformers import AutoTokenizer

    from training.pooling import load_classifier

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint_dir), local_files_only=True)
    if not tokenizer.is_fast:
        raise DataError(
            f"{checkpoint_dir} has a slow tokenizer; the bundle needs a fast one (tokenizer.json)"
        )
    # the class it was trained as: the Auto class would read a mean-pooled checkpoint's [CLS] silently
    model = load_classifier(checkpoint_dir, local_files_only=True)
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
