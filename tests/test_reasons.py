"""A consult's history sentences are stored in English and read in the viewer's language
(telemed.consults.reasons): every registered sentence reads back its values, and a stored
text is translated with its codes and days in words and names and typed text as they are."""

from __future__ import annotations

import re
from datetime import date

from telemed import i18n
from telemed.consults import reasons

SAMPLES: dict[str, object] = {
    "count": 3,
    "days": 28,
    "day": date(2026, 12, 5),
    "reason": "not today: on leave; back Monday",
    "why": "the specialist's account was deactivated",
    "outcome": "referral avoided",
}


def test_every_registered_sentence_reads_back_its_values() -> None:
    assert len(reasons.REGISTERED) > 30
    for msgid, _pattern in reasons.REGISTERED:
        names = re.findall(r"%\((\w+)\)s", msgid)
        values = {name: SAMPLES.get(name, f"Dr. {name.title()} Mokoena, RN") for name in names}
        stored = reasons.english(msgid, **values)
        expected = {n: "05 Dec 2026" if n == "day" else str(v) for n, v in values.items()}
        assert reasons.parse(stored) == (msgid, expected), stored


def test_a_stored_text_reads_in_sesotho_with_its_values_in_words() -> None:
    with i18n.use_language("st"):
        assert reasons.translate("outcome recorded: referral avoided") == (
            "sephetho se ngotsoe: phetisetso e qobiloe"
        )
        assert reasons.translate("follow-up due on 05 Dec 2026").endswith("2026")
        assert "Dec" not in reasons.translate("follow-up due on 05 Dec 2026")
        assert reasons.translate(
            "offer to Dr. Lerato Moloi withdrawn: the specialist's account was deactivated"
        ) == ("kopo e neng e fuoe Dr. Lerato Moloi e hutsoe: ak'haonte ea setsebi e timiloe")
        assert reasons.translate("declined by Dr. Moloi: in theatre") == (
            "e hannoe ke Dr. Moloi: in theatre"
        )
        assert reasons.translate("The mother took the child home.") == (
            "The mother took the child home."
        )
    assert reasons.translate("outcome recorded: referral avoided") == (
        "outcome recorded: referral avoided"
    )
