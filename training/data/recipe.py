"""The text recipe shared by every stage (docs/contracts.md, section 1).

``build_text`` is the bundle contract's (:mod:`bundle_contract`, the same function the server and the export
gate run); this module adds the data stage's side: the default recipe and the config check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bundle_contract.text import KNOWN_FIELDS, build_text
from training.data.errors import DataValidationError

__all__ = ["DEFAULT_RECIPE", "RECIPE_FIELDS", "build_text", "normalize_recipe"]

#: Columns a recipe may name.
RECIPE_FIELDS = KNOWN_FIELDS
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
    return {"fields": [str(name) for name in fields], "separator": separator}
