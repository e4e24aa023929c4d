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
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
th{background:#f3f3f3}.ok{color:#176f2c}.bad{color:#b3261e;font-weight:600}.muted{color:#666}
.verdict{font-size:1.4rem;padding:.6rem 1rem;border-radius:.4rem;display:inline-block}
.verdict.ok{background:#e6f4ea}.verdict.bad{background:#fce8e6}
.bar{display:inline-block;height:.7rem;background:#5b8def;vertical-align:middle}
.bar.cur{background:#f29900}
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _bar(share: float, css: str) -> str:
    width = max(0.0, min(1.0, share)) * 12
    return f'<span class="bar {css}" style="width:{width:.2f}rem"></span> {share:.1%}'


def _feature_table(feature: dict[str, Any]) -> str:
    ref, cur = feature["reference"], feature["current"]
    rows = []
    for key in sorted(set(ref) | set(cur), key=lambda k: (k not in ref, k)):
        r, c = ref.get(key), cur.get(key)
        if feature["kind"] == "categorical":
            cells = (_bar(r or 0.0, "ref"), _bar(c or 0.0, "cur"))
        else:
            cells = (_fmt(r) if r is not None else "", _fmt(c) if c is not None else "")
        rows.append(f"<tr><td>{html.escape(str(key))}</td><td>{cells[0]}</td><td>{cells[1]}</td></tr>")
    return "<table><tr><th></th><th>reference</th><th>current</th></tr>" + "".join(rows) + "</table>"


def render_html(report: dict[str, Any]) -> str:
    drifted = report["verdict"] == "drifted"
    css = "bad" if drifted else "ok"
    summary_rows = []
    for f in report["features"]:
        state = '<span class="bad">drift</span>' if f["drifted"] else '<span class="ok">stable</span>'
        summary_rows.append(
            f"<tr><td>{html.escape(f['name'])}</td><td>{f['test']}</td><td>{_fmt(f['statistic'])}</td>"
            f"<td>{_fmt(f['p_value'])}</td><td>{_fmt(f['psi'])}</td><td>{f['n_reference']}</td>"
            f"<td>{f['n_current']}</td><td>{state}</td></tr>"
        )
    details = "".join(
        f"<h3>{html.escape(f['name'])}</h3>"
        + (f'<p class="muted">{html.escape(f["note"])}</p>' if f["note"] else "")
        + _feature_table(f)
        for f in report["features"]
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report["notes"])
    th = report["thresholds"]
    versions = html.escape(", ".join(report["current"]["model_versions"]) or "-")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report: {html.escape(report["verdict"])}</title>
<style>{_CSS}</style></head><body>
<h1>ticket-triage drift report</h1>
<p class="verdict {css}">{html.escape(report["verdict"].replace("_", " "))}</p>
<p>Created {html.escape(report["created_at"])}.
Reference: <code>{html.escape(report["reference"]["source"])}</code> ({report["reference"]["kind"]},
n={report["reference"]["n"]}). Current: <code>{html.escape(report["current"]["source"])}</code>
(n={report["current"]["n"]}, model versions: {versions}).</p>
<p class="muted">A feature drifts when p &lt; {th["alpha"]} and PSI &ge; {th["psi"]}.</p>
<table><tr><th>feature</th><th>test</th><th>statistic</th><th>p-value</th><th>PSI</th>
<th>n ref</th><th>n cur</th><th>state</th></tr>{"".join(summary_rows)}</table>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<h2>Distributions</h2>{details}
</body></html>
"""
