"""The text recipe (docs/contracts.md, section 1), shared by export, server and monitoring.

``tests/test_contracts.py`` checks this copy and the training one agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import msgspec

__all__ = ["KNOWN_FIELDS", "KNOWN_STRIP_STEPS", "TextRecipe", "build_text", "strip_boilerplate"]

KNOWN_FIELDS = ("subject", "body")


class TextRecipe(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How subject and body become the model input: ``{"fields": [...], "separator": "\\n", "strip": [...]}``.

    Unknown keys are refused: a recipe key this reader does not know would change the model's input text.
    """

    fields: tuple[str, ...] = ("subject", "body")
    separator: str = "\n"
    strip: tuple[str, ...] = ()


# --- boilerplate stripping (recipe key ``strip``; docs/contracts.md, section 1) ---

# HTML line breaks and paragraph tags (some source files carry them in place of newlines)
_MARKUP_RE = re.compile(r"<\s*/?\s*(?:br|p)\s*/?\s*>", re.IGNORECASE)
_ENTITIES = {"&nbsp;": " ", "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'"}
_ENTITY_RE = re.compile("|".join(map(re.escape, _ENTITIES)), re.IGNORECASE)
# the dataset's anonymisation placeholders: <name>, <tel_num>, <acc_num>, <email_address>, [Your Name], ...
_PLACEHOLDER_RE = re.compile(
    r"<(?!(?:br|p)>)[a-z][a-z_]{1,19}>|\[(?:your|customer|company)\s+[a-z ]{2,20}\]", re.IGNORECASE
)
# a salutation opening the body, in the five languages, up to its delimiter (, : ; ! . or a line end) within
# 60 characters ("Dear Customer Support,", "Sehr geehrte Damen und Herren,", "Estimado equipo de soporte:")
_GREETING_WORDS = (
    r"dear|hello|hi|hey|greetings|good\s+(?:morning|afternoon|evening)|respected|to\s+whom\s+it\s+may\s+concern"
    r"|sehr\s+geehrte[rs]?|geehrte[rs]?|hallo|liebe[rs]?|guten\s+(?:tag|morgen|abend)|moin"
    r"|estimad[oa]s?|hola|buen[oa]s\s+(?:d[ií]as|tardes|noches)|apreciad[oa]s?|querid[oa]s?"
    r"|ch[eè]re?s?|bonjour|bonsoir|madame|monsieur|salut"
    r"|car[oa]s?|prezad[oa]s?|ol[aá]|bom\s+dia|boa\s+(?:tarde|noite)"
)
_GREETING_RE = re.compile(
    rf"^\s*(?:(?:{_GREETING_WORDS})\b[^\n,:;!.?]{{0,60}}(?:[,:;!.]|\n|$)"
    r"|customer\s+(?:support|service|care|assistance)(?:\s+(?:team|department|desk))?\s*[,:]"
    r"|(?:support|service|help\s*desk)\s+team\s*[,:])[ \t]*\n*",
    re.IGNORECASE,
)
# a sign-off and whatever short signature follows it, at the very end of the body
_CLOSING_WORDS = (
    r"(?:best|kind|warm|warmest|many)\s+regards|regards|sincerely|yours\s+(?:sincerely|faithfully|truly)"
    r"|thank\s+you(?:\s+in\s+advance)?|thanks(?:\s+in\s+advance)?|cheers|best\s+wishes"
    r"|mit\s+freundlichen\s+gr[üu](?:ß|ss)en|(?:freundliche|beste|viele|liebe)\s+gr[üu](?:ß|ss)e"
    r"|vielen\s+dank(?:\s+im\s+voraus)?|danke(?:\s+im\s+voraus)?"
    r"|(?:un\s+)?saludos?(?:\s+cordiales)?|atentamente|cordialmente|gracias(?:\s+de\s+antemano)?"
    r"|(?:bien\s+)?cordialement|merci(?:\s+d'avance|\s+beaucoup)?|(?:sinc[eè]res\s+)?salutations"
    r"|atenciosamente|cumprimentos|obrigad[oa]|abra[çc]os?"
)
# the sign-off begins a sentence or line and is followed by punctuation or a line end, then at most a short
# signature: "Best regards,\n<name>", "Mit freundlichen Grüßen", "Merci, <name>."
# (not "Thank you for fixing it.")
_CLOSING_RE = re.compile(
    rf"(?:^|[.!?,;:\n])[ \t]*((?:{_CLOSING_WORDS})\b)(?=[,.!:;\-\u2013\u2014]|[ \t]*(?:\n|$))", re.IGNORECASE
)


def _markup(text: str) -> str:
    return _ENTITY_RE.sub(lambda m: _ENTITIES[m.group(0).lower()], _MARKUP_RE.sub("\n", text))


def _placeholders(text: str) -> str:
    return _PLACEHOLDER_RE.sub("", text)


def _greeting(text: str) -> str:
    return _GREETING_RE.sub("", text, count=1)


_CLOSING_WINDOW = 300


def _is_signature(tail: str) -> bool:
    """Punctuation, then up to four short lines (a name, a role) that are not sentences."""
    lines = [line.strip() for line in tail.lstrip(",.!:;-\u2013\u2014 \t").splitlines() if line.strip()]
    return len(lines) <= 4 and all(
        len(line) <= 40 and not any(mark in line.rstrip(".!") for mark in ".?!") for line in lines
    )


def _closing(text: str) -> str:
    # the earliest sign-off that only a short signature follows: "Thanks. Best regards, Ana" loses both
    # a sign-off and its signature fit in the last _CLOSING_WINDOW characters: searching only there keeps a
    # long text of repeated "thanks," linear (the server runs this on every request)
    for match in _CLOSING_RE.finditer(text, max(0, len(text) - _CLOSING_WINDOW)):
        if _is_signature(text[match.end(1) :]):
            return text[: match.start(1)].rstrip(" \t\n,;:-")
    return text


#: ``strip`` steps in the order they run; ``greeting`` and ``closing`` touch the body only.
_STEPS: dict[str, tuple[Callable[[str], str], bool]] = {
    "markup": (_markup, True),
    "placeholders": (_placeholders, True),
    "greeting": (_greeting, False),
    "closing": (_closing, False),
}
KNOWN_STRIP_STEPS = tuple(_STEPS)


def strip_boilerplate(text: str, steps: Sequence[str], is_body: bool = True) -> str:
    """``text`` with the named boilerplate removed (in :data:`KNOWN_STRIP_STEPS` order); unknown names raise.

    A field that the steps would empty is kept as it was: stripping never turns a ticket into nothing.
    """
    unknown = [name for name in steps if name not in _STEPS]
    if unknown:
        raise ValueError(f"unknown text_recipe.strip steps {unknown}; known: {list(KNOWN_STRIP_STEPS)}")
    out = text
    for name, (step, on_subject) in _STEPS.items():
        if name in steps and (is_body or on_subject):
            out = step(out)
    out = re.sub(r"[ \t]+\n", "\n", out).strip()
    return out if out else text


def build_text(subject: str | None, body: str | None, recipe: TextRecipe | Mapping[str, object]) -> str:
    """Strip each field named by the recipe (None -> ""), drop empty ones, join the rest by the separator.

    With ``strip`` steps, each field loses that boilerplate first (:func:`strip_boilerplate`).
    """
    if isinstance(recipe, TextRecipe):
        fields: Sequence[str] = recipe.fields
        separator = recipe.separator
        steps: Sequence[str] = recipe.strip
    else:
        fields = list(recipe.get("fields", ("subject", "body")))  # type: ignore[call-overload]
        separator = str(recipe.get("separator", "\n"))
        steps = list(recipe.get("strip", ()) or ())  # type: ignore[call-overload]
    values = {"subject": subject, "body": body}
    parts = [(values.get(name) or "").strip() for name in fields]
    if steps:
        parts = [
            strip_boilerplate(part, steps, is_body=name == "body") if part else part
            for name, part in zip(fields, parts, strict=True)
        ]
    return separator.join(part for part in parts if part)
