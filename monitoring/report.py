"""Write a drift report as JSON (for automation) and a self-contained HTML page (for people)."""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same directory and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=False, allow_nan=False, default=str) + "\n")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
th{background:#f3f3f3}.ok{color:#176f2c}.bad{color:#b3261e;font-weight:600}.muted{color:#666}
.verdict{font-size:1.5rem;padding:.6rem 1rem;border-radius:.4rem;display:inline-block;margin:.2rem 0}
.verdict.ok{background:#e6f4ea}.verdict.bad{background:#fce8e6}.verdict.muted{background:#eee}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(21rem,1fr));gap:1rem}
.card{border:1px solid #ddd;border-radius:.5rem;padding:.6rem .8rem}.card.drift{border:2px solid #b3261e}
.card h3{margin:.1rem 0 .2rem;font-size:1.05rem}.card p{margin:.2rem 0;font-size:.85rem}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem;vertical-align:middle}
.legend .ref{background:#5b8def}.legend .cur{background:#f29900}
"""

_REF, _CUR = "#5b8def", "#f29900"
_W, _H = 320, 150  # chart size (SVG user units)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _svg_histogram(hist: dict[str, list[float]]) -> str:
    """Reference and current shares per bin as two overlaid bar series on one x axis."""
    edges, ref, cur = hist["edges"], hist["reference"], hist["current"]
    n = len(ref)
    top = max([*ref, *cur, 1e-9])
    left, bottom, plot_w, plot_h = 34, 22, _W - 44, _H - 34
    bar = plot_w / n
    parts = []
    for i, (r, c) in enumerate(zip(ref, cur, strict=True)):
        x = left + i * bar
        for share, color, dx in ((r, _REF, 0.0), (c, _CUR, bar / 2)):
            h = plot_h * share / top
            parts.append(
                f'<rect x="{x + dx:.1f}" y="{_H - bottom - h:.1f}" width="{bar / 2 - 0.5:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{share:.1%}</title></rect>'
            )
    axis = (
        f'<line x1="{left}" y1="{_H - bottom}" x2="{left + plot_w}" y2="{_H - bottom}" stroke="#888"/>'
        f'<text x="{left}" y="{_H - 6}" font-size="10">{_fmt(edges[0])}</text>'
        f'<text x="{left + plot_w}" y="{_H - 6}" font-size="10" text-anchor="end">{_fmt(edges[-1])}</text>'
        f'<text x="{left + plot_w / 2}" y="{_H - 6}" font-size="10" text-anchor="middle">'
        f"{_fmt(edges[len(edges) // 2])}</text>"
        f'<text x="{left - 4}" y="{_H - bottom - plot_h + 8}" font-size="10" text-anchor="end">'
        f"{top:.0%}</text>"
        f'<text x="{left - 4}" y="{_H - bottom}" font-size="10" text-anchor="end">0</text>'
    )
    return (
        f'<svg viewBox="0 0 {_W} {_H}" width="100%" role="img" aria-label="histogram">'
        + "".join(parts)
        + axis
        + "</svg>"
    )


def _svg_categories(ref: dict[str, float], cur: dict[str, float]) -> str:
    """One row per category: the reference share (blue) above the current share (orange), labelled."""
    keys = sorted(set(ref) | set(cur), key=lambda k: (-(ref.get(k, 0.0) + cur.get(k, 0.0)), k))[:12]
    row, left, width = 26, 70, _W - 130
    height = row * len(keys) + 6
    parts = []
    for i, key in enumerate(keys):
        y = 4 + i * row
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" font-size="11" text-anchor="end">{html.escape(key)}</text>'
        )
        for share, color, dy in ((ref.get(key, 0.0), _REF, 0), (cur.get(key, 0.0), _CUR, 11)):
            parts.append(
                f'<rect x="{left}" y="{y + dy}" width="{max(0.5, width * share):.1f}" height="10" '
                f'fill="{color}"/>'
                f'<text x="{left + width * share + 4:.1f}" y="{y + dy + 9}" font-size="9">{share:.1%}</text>'
            )
    return (
        f'<svg viewBox="0 0 {_W} {height}" width="100%" role="img" aria-label="shares">'
        + "".join(parts)
        + "</svg>"
    )


def _summary_line(feature: dict[str, Any]) -> str:
    if feature["kind"] != "numeric":
        return ""
    ref, cur = feature["reference"], feature["current"]
    return (
        f'<p class="muted">median {_fmt(ref["p50"])} &rarr; {_fmt(cur["p50"])}, '
        f"p95 {_fmt(ref['p95'])} &rarr; {_fmt(cur['p95'])}</p>"
    )


def _card(feature: dict[str, Any]) -> str:
    drifted = feature["drifted"]
    state = '<span class="bad">DRIFT</span>' if drifted else '<span class="ok">stable</span>'
    chart = (
        _svg_histogram(feature["histogram"])
        if feature["kind"] == "numeric" and feature.get("histogram")
        else _svg_categories(feature["reference"], feature["current"])
    )
    test = "KS" if feature["test"] == "ks" else "chi&sup2;"
    return (
        f'<div class="card{" drift" if drifted else ""}"><h3>{html.escape(feature["name"])} {state}</h3>'
        f"<p>PSI <b>{feature['psi']:.3f}</b> &middot; {test} {_fmt(feature['statistic'])}, "
        f"p = {_fmt(feature['p_value'])}</p>"
        + (f'<p class="muted">{html.escape(feature["note"])}</p>' if feature["note"] else "")
        + chart
        + _summary_line(feature)
        + "</div>"
    )


def render_html(report: dict[str, Any]) -> str:
    verdict = report["verdict"]
    css = {"drifted": "bad", "not_drifted": "ok"}.get(verdict, "muted")
    summary_rows = []
    for f in report["features"]:
        state = '<span class="bad">drift</span>' if f["drifted"] else '<span class="ok">stable</span>'
        summary_rows.append(
            f"<tr><td>{html.escape(f['name'])}</td><td>{f['test']}</td><td>{_fmt(f['statistic'])}</td>"
            f"<td>{_fmt(f['p_value'])}</td><td>{_fmt(f['psi'])}</td><td>{f['n_reference']}</td>"
            f"<td>{f['n_current']}</td><td>{state}</td></tr>"
        )
    cards = "".join(_card(f) for f in sorted(report["features"], key=lambda f: not f["drifted"]))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report["notes"])
    th = report["thresholds"]
    versions = html.escape(", ".join(report["current"]["model_versions"]) or "-")
    drifted = report.get("drifted_features") or []
    headline = (
        f"{len(drifted)} of {len(report['features'])} features drifted: {html.escape(', '.join(drifted))}"
        if drifted
        else f"no feature drifted ({len(report['features'])} compared)"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report: {html.escape(verdict)}</title>
<style>{_CSS}</style></head><body>
<h1>ticket-triage drift report</h1>
<p class="verdict {css}">{html.escape(verdict.replace("_", " "))}</p>
<p><b>{headline}</b>. A feature drifts when p &lt; {th["alpha"]} <i>and</i> PSI &ge; {th["psi"]}.</p>
<p>Reference: <code>{html.escape(report["reference"]["source"])}</code> ({report["reference"]["kind"]},
n={report["reference"]["n"]}). Window: <code>{html.escape(report["current"]["source"])}</code>
(n={report["current"]["n"]}, model versions: {versions}). Created {html.escape(report["created_at"])}.</p>
<p class="legend"><span class="ref"></span>reference<span class="cur"></span>window</p>
<div class="grid">{cards}</div>
<h2>All figures</h2>
<table><tr><th>feature</th><th>test</th><th>statistic</th><th>p-value</th><th>PSI</th>
<th>n ref</th><th>n window</th><th>state</th></tr>{"".join(summary_rows)}</table>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
</body></html>
"""
