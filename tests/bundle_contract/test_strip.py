"""Boilerplate stripping, the text recipe's ``strip`` steps (docs/contracts.md, section 1)."""

from __future__ import annotations

import pytest

from bundle_contract.text import KNOWN_STRIP_STEPS, build_text, strip_boilerplate

ALL = list(KNOWN_STRIP_STEPS)
RECIPE = {"fields": ["subject", "body"], "separator": "\n", "strip": ALL}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # the helpdesk file's shape: HTML breaks, salutation, sign-off, anonymisation placeholders
        (
            "Dear Customer Support,<br><br> Zoom crashes during webinars. Please look into it.<br><br> "
            "Best regards,<br> <name>",
            "Zoom crashes during webinars. Please look into it.",
        ),
        ("Cher service client, mon ordinateur plante. Merci, <name>.", "mon ordinateur plante."),
        (
            "Sehr geehrter Kundenservice, die Datenbank ist langsam. Vielen Dank, <name> <acc_num>",
            "die Datenbank ist langsam.",
        ),
        (
            "Hola,\n\nLa pantalla falla. ¿Podría ayudarme? Gracias.\n\nSaludos,\n\n<name>",
            "La pantalla falla. ¿Podría ayudarme?",
        ),
        ("Prezado suporte, o sistema caiu. Atenciosamente, <name> <tel_num>", "o sistema caiu."),
        ("Customer Support team, I am reaching out about QuickBooks.", "I am reaching out about QuickBooks."),
        ("Hi, the server is down. Thanks in advance!\nJohn Smith\nIT Admin", "the server is down."),
        # what must stay: sentences that only start or end like boilerplate
        ("I have a question with regards to billing", "I have a question with regards to billing"),
        ("Thank you for looking into this urgent outage.", "Thank you for looking into this urgent outage."),
        ("Customer service has been slow, please fix.", "Customer service has been slow, please fix."),
        ("Hilfe, der Drucker brennt.", "Hilfe, der Drucker brennt."),
        ("Hier ist ein Fehler: der Server ist down.", "Hier ist ein Fehler: der Server ist down."),
    ],
)
def test_every_step_on_ticket_shapes(body: str, expected: str) -> None:
    assert build_text(None, body, RECIPE) == expected


def test_a_field_is_never_stripped_to_nothing() -> None:
    assert build_text(None, "Dear support,", RECIPE) == "Dear support,"
    assert build_text("<name>", "Hello,", RECIPE) == "<name>\nHello,"


def test_subject_loses_markup_and_placeholders_only() -> None:
    assert build_text("Hello<br>from <company>", "Body.", RECIPE) == "Hello\nfrom\nBody."
    assert strip_boilerplate("Dear team, thanks", ["greeting"], is_body=False) == "Dear team, thanks"


def test_steps_run_alone_and_in_a_fixed_order() -> None:
    body = "Dear team,<br>It broke. <name>"
    assert strip_boilerplate(body, ["markup"]) == "Dear team,\nIt broke. <name>"
    assert strip_boilerplate(body, ["placeholders"]) == "Dear team,<br>It broke."
    assert strip_boilerplate(body, ["greeting"]) == "<br>It broke. <name>"
    assert strip_boilerplate(body, ["closing", "markup"]) == strip_boilerplate(body, ["markup", "closing"])


def test_entities_and_br_variants() -> None:
    assert strip_boilerplate("a<br/>b<BR />c&nbsp;d &amp; e", ["markup"]) == "a\nb\nc d & e"


def test_no_steps_is_the_plain_recipe() -> None:
    plain = {"fields": ["subject", "body"], "separator": "\n"}
    body = "Dear team,<br>It broke. Best regards, <name>"
    assert build_text("S", body, {**plain, "strip": []}) == build_text("S", body, plain) == f"S\n{body}"


def test_unknown_step_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown text_recipe\.strip steps \['emoji'\]"):
        strip_boilerplate("text", ["emoji"])
