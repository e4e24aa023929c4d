"""The text recipe shared by every stage (docs/contracts.md, section 1).

``build_text`` is the bundle contract's (:mod:`bundle_contract`, the same function the server and the export
gate run); this module adds the data stage's side: the default recipe and the config check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bundle_contract.text import KNOWN_FIELDS, KNOWN_STRIP_STEPS, build_text
from training.data.errors import DataValidationError

__all__ = ["DEFAULT_RECIPE", "RECIPE_FIELDS", "STRIP_STEPS", "build_text", "normalize_recipe"]

#: Columns a recipe may name.
RECIPE_FIELDS = KNOWN_FIELDS
#: Boilerplate a recipe may strip (``strip``), in the order the steps run.
STRIP_STEPS = KNOWN_STRIP_STEPS
DEFAULT_RECIPE: dict[str, Any] = {"fields": ["subject", "body"], "separator": "\n"}


def normalize_recipe(recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a recipe from config and return it as a plain JSON-able dict."""
    if recipe is None:
        return dict(DEFAULT_RECIPE)
    fields = list(recipe.get("fields") or [])
    separator = recipe.get("separator", "\n")
    unknown = [name for name in fields if name not in RECIPE_FIELDS]
    if not fields or unknown:
        raise DataValidationError(
            f"data.text_recipe.fields must be a non-empty list drawn from {list(RECIPE_FIELDS)}, got {fields}"
        )
    if not isinstance(separator, str):
        raise DataValidationError(f"data.text_recipe.separator must be a string, got {separator!r}")
    unknown_keys = sorted(set(recipe) - {"fields", "separator", "strip"})
    if unknown_keys:
        raise DataValidationError(
            f"data.text_recipe has unknown keys {unknown_keys}; it takes fields, separator and strip"
        )
    strip = recipe.get("strip") or []
    if isinstance(strip, str) or not all(isinstance(step, str) and step in STRIP_STEPS for step in strip):
        raise DataValidationError(
            f"data.text_recipe.strip must be a list drawn from {list(STRIP_STEPS)}, got {strip!r}"
        )
    out: dict[str, Any] = {"fields": [str(name) for name in fields], "separator": separator}
    if strip:  # absent when empty: a recipe without stripping keeps the data hash it always had
        out["strip"] = [step for step in STRIP_STEPS if step in strip]
    return out
