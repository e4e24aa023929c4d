"""The text recipe (docs/contracts.md, section 1)."""

from __future__ import annotations

import pytest

from training.data import DEFAULT_RECIPE, DataValidationError, build_text
from training.data.recipe import normalize_recipe


@pytest.mark.parametrize(
    ("subject", "body", "recipe", "expected"),
    [
        ("Login broken", "I cannot log in.", DEFAULT_RECIPE, "Login broken\nI cannot log in."),
        ("  Login broken \n", "\n I cannot log in.  ", DEFAULT_RECIPE, "Login broken\nI cannot log in."),
        (None, "Body only", DEFAULT_RECIPE, "Body only"),
        ("   ", "Body only", DEFAULT_RECIPE, "Body only"),
        ("Subject", None, DEFAULT_RECIPE, "Subject"),
        ("Subject", "Body", {"fields": ["body"], "separator": "\n"}, "Body"),
        ("Subject", "Body", {"fields": ["subject", "body"], "separator": " | "}, "Subject | Body"),
        ("A  B", "Line 1\n\nLine 2", DEFAULT_RECIPE, "A  B\nLine 1\n\nLine 2"),  # nothing else is normalised
    ],
)
def test_build_text(subject: str | None, body: str | None, recipe: dict[str, object], expected: str) -> None:
    assert build_text(subject, body, recipe) == expected


def test_default_recipe_matches_the_contract() -> None:
    assert DEFAULT_RECIPE == {"fields": ["subject", "body"], "separator": "\n"}
    assert normalize_recipe(None) == DEFAULT_RECIPE


@pytest.mark.parametrize(
    "recipe", [{"fields": []}, {"fields": ["title"]}, {"fields": ["body"], "separator": 3}]
)
def test_bad_recipe_is_refused(recipe: dict[str, object]) -> None:
    with pytest.raises(DataValidationError, match="text_recipe"):
        normalize_recipe(recipe)
