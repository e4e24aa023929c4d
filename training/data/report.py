"""Human-readable summaries printed by the command line (the library itself only logs)."""

from __future__ import annotations

from typing import Any

from training.data.split import SPLITS


def format_summary(stats: dict[str, Any], output_dir: str) -> str:
    """A short report of what ``prepare`` did: rows in, drops, duplicates, then rows per label x split."""
    labels: list[str] = stats["labels"]
    dropped = ", ".join(f"{key} {value}" for key, value in stats["dropped"].items() if value) or "none"
    lines = [
        f"prepared {stats['target']} data into {output_dir}",
        f"files: {len(stats['files'])}  rows in: {stats['rows_in']}  duplicates (subject+body): "
        f"{stats['duplicates']}  dropped: {dropped}  rows out: {stats['rows_out']}",
    ]
    if stats.get("mapped"):
        lines.append("mapped labels: " + ", ".join(f"{k} ({v})" for k, v in stats["mapped"].items()))
    width = max([len(label) for label in labels] + [5])
    lines.append(f"{'label':<{width}}  " + "  ".join(f"{name:>6}" for name in SPLITS))
    for label in labels:
        cells = [sum(stats["counts"][name].get(label, {}).values()) for name in SPLITS]
        lines.append(f"{label:<{width}}  " + "  ".join(f"{cell:>6}" for cell in cells))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{stats['sizes'][name]:>6}" for name in SPLITS))
    languages = sorted({lang for split in stats["counts"].values() for per in split.values() for lang in per})
    lines.append("languages: " + ", ".join(languages))
    return "\n".join(lines) + "\n"
