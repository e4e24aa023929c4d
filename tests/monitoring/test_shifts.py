"""The input shifts of the robustness check: deterministic, and each changes what it says it changes."""

from __future__ import annotations

import random

import numpy as np

from monitoring.robustness import macro_f1
from monitoring.shifts import SHIFTS, add_typos

TICKETS = [
    ("Payment failed", "Since this morning every card payment fails at checkout with error 503."),
    ("Rechnung fehlt", "Bitte senden Sie uns eine Kopie der Rechnung vom letzten Monat."),
    ("", "Necesito cambiar la dirección de envío de mi pedido urgente."),
    ("Connexion impossible", "Depuis la mise à jour, personne ne peut se connecter au tableau de bord."),
]
LANGUAGES = ["en", "de", "es", "fr"]


def apply(name: str, seed: int = 0) -> list[tuple[str, str]]:
    return SHIFTS[name].apply(TICKETS, LANGUAGES, random.Random(seed))


def test_shifts_are_deterministic_for_a_seed() -> None:
    for name in SHIFTS:
        assert apply(name, seed=3) == apply(name, seed=3), name


def test_typos_change_some_words_but_keep_the_text_recognisable() -> None:
    text = "Since this morning every customer payment fails during checkout because gateway returns errors"
    shifted = add_typos(text, random.Random(1), rate=0.5)
    assert shifted != text
    assert len(shifted.split()) == len(text.split())
    changed = sum(a != b for a, b in zip(shifted.split(), text.split(), strict=True))
    assert 1 <= changed <= len(text.split())
    assert add_typos(text, random.Random(1), rate=0.0) == text


def test_case_truncation_and_subject_shifts() -> None:
    assert apply("uppercase")[0][0] == "PAYMENT FAILED"
    assert all(b == b.lower() for _, b in apply("lowercase"))
    for (_, short), (_, full) in zip(apply("truncated"), TICKETS, strict=True):
        assert full.startswith(short) and len(short) < len(full)
    assert all(s == "" for s, _ in apply("no_subject"))


def test_language_swap_takes_the_subject_from_another_language() -> None:
    subject_language = {s: lang for (s, _), lang in zip(TICKETS, LANGUAGES, strict=True) if s}
    for (subject, body), (_, original_body), language in zip(
        apply("language_swap"), TICKETS, LANGUAGES, strict=True
    ):
        assert body == original_body
        assert subject_language[subject] != language


def test_macro_f1_matches_the_definition() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    assert macro_f1(y_true, y_true) == 1.0
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    # per class F1: 0 -> 2*1/(2+1+1)=0.5, 1 -> 2*2/(4+1+0)=0.8, 2 -> 2*1/(2+0+1)=0.6667
    assert abs(macro_f1(y_true, y_pred) - (0.5 + 0.8 + 2 / 3) / 3) < 1e-9
