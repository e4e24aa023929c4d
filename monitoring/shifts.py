"""Input shifts for the robustness check: each maps (subject, body) to a shifted (subject, body), seeded.

They imitate what production traffic does to tickets the model never saw in training: typing errors,
shouting or lower-cased text, tickets cut short by a form's length limit, a missing subject, and
mixed-language tickets (a subject in one language on a body in another, as when an English template wraps a
local reply).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Ticket = tuple[str, str]  # (subject, body)
_WORD = re.compile(r"[^\W\d_]{4,}")


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def add_typos(text: str, rng: random.Random, rate: float = 0.15) -> str:
    """Put one typing error (swap, drop or double a letter) into ``rate`` of the words of 4+ letters."""
    return _WORD.sub(lambda m: _typo(m.group(0), rng) if rng.random() < rate else m.group(0), text)


@dataclass(frozen=True)
class Shift:
    name: str
    description: str
    apply: Callable[[Sequence[Ticket], Sequence[str], random.Random], list[Ticket]]


def _typos(tickets: Sequence[Ticket], languages: Sequence[str], rng: random.Random) -> list[Ticket]:
    return [(add_typos(s, rng), add_typos(b, rng)) for s, b in tickets]


def _lower(tickets: Sequence[Ticket], languages: Sequence[str], rng: random.Random) -> list[Ticket]:
    return [(s.lower(), b.lower()) for s, b in tickets]


def _upper(tickets: Sequence[Ticket], languages: Sequence[str], rng: random.Random) -> list[Ticket]:
    return [(s.upper(), b.upper()) for s, b in tickets]


def _truncate(tickets: Sequence[Ticket], languages: Sequence[str], rng: random.Random) -> list[Ticket]:
    out = []
    for s, b in tickets:
        cut = max(1, len(b) // 4)
        while cut < len(b) and not b[cut].isspace():  # cut at a word boundary
            cut += 1
        out.append((s, b[:cut]))
    return out


def _no_subject(tickets: Sequence[Ticket], languages: Sequence[str], rng: random.Random) -> list[Ticket]:
    return [("", b) for _, b in tickets]


def _language_swap(tickets: Sequence[Ticket], languages: Sequence[str], rng: random.Random) -> list[Ticket]:
    """The subject of a random ticket in another language; unchanged where no other language has a subject."""
    by_language: dict[str, list[str]] = {}
    for (subject, _), language in zip(tickets, languages, strict=True):
        if subject.strip():
            by_language.setdefault(language, []).append(subject)
    out = []
    for (subject, body), language in zip(tickets, languages, strict=True):
        others = sorted(lang for lang in by_language if lang != language)
        if not others:
            out.append((subject, body))
            continue
        pool = by_language[rng.choice(others)]
        out.append((pool[rng.randrange(len(pool))], body))
    return out


SHIFTS: dict[str, Shift] = {
    s.name: s
    for s in (
        Shift("typos", "one typing error in 15% of the words of 4+ letters", _typos),
        Shift("lowercase", "subject and body lower-cased", _lower),
        Shift("uppercase", "subject and body upper-cased", _upper),
        Shift("truncated", "body cut to its first quarter (at a word boundary)", _truncate),
        Shift("no_subject", "subject removed", _no_subject),
        Shift("language_swap", "subject taken from a ticket in another language", _language_swap),
    )
}
