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
    "recipe",
    [
        {"fields": []},
        {"fields": ["title"]},
        {"fields": ["body"], "separator": 3},
        {"fields": ["body"], "strip": ["emoji"]},
        {"fields": ["body"], "strip": "greeting"},
        {"fields": ["body"], "lowercase": True},
    ],
)
def test_bad_recipe_is_refused(recipe: dict[str, object]) -> None:
    with pytest.raises(DataValidationError, match="text_recipe"):
        normalize_recipe(recipe)


def test_strip_steps_are_kept_in_run_order_and_left_out_when_empty() -> None:
    """An empty ``strip`` leaves the recipe (and so the data hash) as it was before the key existed."""
    assert normalize_recipe({"fields": ["subject", "body"], "separator": "\n", "strip": []}) == DEFAULT_RECIPE
    recipe = normalize_recipe({"fields": ["body"], "strip": ["closing", "greeting"]})
    assert recipe == {"fields": ["body"], "separator": "\n", "strip": ["greeting", "closing"]}
    assert build_text("S", "Hello team, it broke. Thanks!", recipe) == "it broke."
