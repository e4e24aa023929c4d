"""The text recipe (docs/contracts.md, section 1), shared by export, server and monitoring.

``tests/test_contracts.py`` checks this copy and the training one agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

__all__ = ["KNOWN_FIELDS", "TextRecipe", "build_text"]

KNOWN_FIELDS = ("subject", "body")


class TextRecipe(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """How subject and body become the model input: ``{"fields": [...], "separator": "\\n"}``."""

    fields: tuple[str, ...] = ("subject", "body")
    separator: str = "\n"


def build_text(subject: str | None, body: str | None, recipe: TextRecipe | Mapping[str, object]) -> str:
    """Strip each field named by the recipe (None -> ""), drop empty ones, join the rest by the separator."""
    if isinstance(recipe, TextRecipe):
        fields: Sequence[str] = recipe.fields
        separator = recipe.separator
    else:
        fields = list(recipe.get("fields", ("subject", "body")))  # type: ignore[call-overload]
        separator = str(recipe.get("separator", "\n"))
    values = {"subject": subject, "body": body}
    parts = [(values.get(name) or "").strip() for name in fields]
    return separator.join(part for part in parts if part)
