"""The language of a ticket for the prediction log and the drift reference: py3langid (langid.py's model).

One detector on both sides of a drift comparison: the server writes ``language`` into its prediction log with
:func:`guess_language`, and ``monitoring.drift`` labels the reference tickets with the same function (not with
the dataset's own ``language`` column), so a detector error is the same error on both sides and does not read
as drift. py3langid was measured against the function-word guess this module used before, on the real tickets
(``python -m monitoring.eval_language ../shared/data/tickets``, figures in docs/monitoring.md): it is right on
more tickets in every language, and it names languages outside the five the model was trained on (``ja``,
``it``, ...) instead of forcing them into one of the five, which is what a drift report needs to see.

The model (~3 MB, numpy only) is loaded on the first call, in the prediction log's writer thread, so it costs
nothing at server start and nothing when the prediction log is off. ``"unknown"``: too few letters to decide.
"""

from __future__ import annotations

import re
import threading
from functools import cache
from typing import Any

__all__ = ["LANGUAGES", "guess_language"]

#: The languages of the training data (anything else is reported by its own ISO 639-1 code).
LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "pt")

_LETTER = re.compile(r"[^\W\d_]")
_lock = threading.Lock()


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE)


def guess_language(text: str, min_letters: int = 8, max_chars: int = 2000) -> str:
    """ISO 639-1 code of the language of ``text`` (its first ``max_chars`` characters), or ``"unknown"``
    when it has fewer than ``min_letters`` letters."""
    head = text[:max_chars]
    if len(_LETTER.findall(head)) < min_letters:
        return "unknown"
    with _lock:  # the first call loads the model; the identifier itself keeps no state between calls
        identifier = _identifier()
    language, _ = identifier.classify(head)
    return str(language)
