"""The server's copy of the text recipe (docs/contracts.md, section 1)."""

from __future__ import annotations

import pytest

from server.text import TextRecipe, build_text

DEFAULT = TextRecipe()


@pytest.mark.parametrize(
    ("subject", "body", "recipe", "expected"),
    [
        ("Login fails", "Since today I cannot log in.", DEFAULT, "Login fails\nSince today I cannot log in."),
        ("  Login fails \n", "\tbody  ", DEFAULT, "Login fails\nbody"),
        (None, "body", DEFAULT, "body"),
        ("", "body", DEFAULT, "body"),
        ("   ", "body", DEFAULT, "body"),
        ("subject", "body", TextRecipe(fields=("body",)), "body"),
        ("s", "b", TextRecipe(fields=("subject", "body"), separator=" | "), "s | b"),
        ("Mixed CASE  spaces", "Zeile 1\nZeile 2", DEFAULT, "Mixed CASE  spaces\nZeile 1\nZeile 2"),
        ("s", "b", {"fields": ["body", "subject"], "separator": "\n"}, "b\ns"),
    ],
)
def test_build_text(
    subject: str | None, body: str, recipe: TextRecipe | dict[str, object], expected: str
) -> None:
    assert build_text(subject, body, recipe) == expected
