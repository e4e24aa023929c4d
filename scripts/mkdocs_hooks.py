"""mkdocs hook: drop nav entries whose page does not exist yet.

So ``mkdocs build --strict`` passes while a stage's page is still being written. Dropped pages are listed at
INFO level (strict mode fails on warnings only).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger("mkdocs.hooks.prune_nav")


def _prune(items: list[Any], docs_dir: Path, dropped: list[str]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            pruned: dict[str, Any] = {}
            for title, value in item.items():
                if isinstance(value, list):
                    children = _prune(value, docs_dir, dropped)
                    if children:
                        pruned[title] = children
                elif isinstance(value, str) and not value.startswith(("http://", "https://")):
                    if (docs_dir / value).is_file():
                        pruned[title] = value
                    else:
                        dropped.append(value)
                else:
                    pruned[title] = value
            if pruned:
                kept.append(pruned)
        elif isinstance(item, str) and not (docs_dir / item).is_file():
            dropped.append(item)
        else:
            kept.append(item)
    return kept


def on_config(config: Any) -> Any:
    nav = config.get("nav")
    if nav:
        dropped: list[str] = []
        config["nav"] = _prune(nav, Path(config["docs_dir"]), dropped)
        if dropped:
            logger.info("nav: not written yet, left out: %s", ", ".join(dropped))
    return config
