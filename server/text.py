"""The text recipe (docs/contracts.md, section 1): re-exported from :mod:`bundle_contract`."""

from __future__ import annotations

from bundle_contract.text import KNOWN_FIELDS, TextRecipe, build_text

__all__ = ["KNOWN_FIELDS", "TextRecipe", "build_text"]
