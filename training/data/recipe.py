"""The text recipe shared by every stage (docs/contracts.md, section 1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training.data.errors import DataValidationError

#: Columns a recipe may name.
RECIPE_FIELDS = ("subject", "body")
DEFAULT_RECIPE: dict[str, Any] = {"fields": ["subject", "body"], "separator": "\n"}


def build_text(subject: str | None, body: str | None, recipe: Mapping[str, Any]) -> str:
    """Build the model input: strip each field named by the recipe, drop the empty ones, join the rest."""
    values = {"subject": subject, "body": body}
    parts = [(values[name] or "").strip() for name in recipe["fields"]]
    return str(recipe["separator"]).join(part for part in parts if part)


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
