"""A cheap language guess for the prediction log (en/de/es/fr/pt): counts of common function words.

Good enough to watch the language mix drift in production; not a classifier. Returns ``"unknown"`` when
the text gives too little evidence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["LANGUAGES", "guess_language"]

_WORD = re.compile(r"[^\W\d_]+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# function words frequent in tickets; words shared by two languages are left out so each hit is evidence
LANGUAGES: Mapping[str, frozenset[str]] = {
    "en": _words(
        "the and is are to of my i we you it this that with for not have has please be on in can our your"
        " was will would could there from been an any"
    ),
    "de": _words(
        "der die das und ist nicht ich wir sie mit für ein eine auf bei den dem des zu von bitte sind haben"
        " wird kann unser unsere ihre ihr auch dass werden im wurde wäre sehr"
    ),
    "es": _words(
        "el los las y es en por con una del mi nuestro nuestra están hemos gracias pero su lo al muy estoy "
        "nuestros hay tengo puede"
    ),
    "fr": _words(
        "le les et est des une pour avec dans nous vous je pas ne sur au aux du mon notre votre être merci"
        " il cette ce sont avons bonjour"
    ),
    "pt": _words(
        "o os e é em com uma um do da dos das não no na nossa nosso meu minha estão obrigado mas sua seu"
        " ao pelo pela você estou tenho"
    ),
}


def guess_language(text: str, min_hits: int = 2, max_words: int = 400) -> str:
    """ISO 639-1 code of the language with most function-word hits in the first ``max_words`` words."""
    counts = dict.fromkeys(LANGUAGES, 0)
    for n, match in enumerate(_WORD.finditer(text.lower())):
        if n >= max_words:
            break
        word = match.group()
        for lang, words in LANGUAGES.items():
            if word in words:
                counts[lang] += 1
    best = max(counts, key=lambda lang: counts[lang])
    ranked = sorted(counts.values(), reverse=True)
    if ranked[0] < min_hits or ranked[0] == ranked[1]:
        return "unknown"
    return best
