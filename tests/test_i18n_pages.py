"""A clinician, a specialist and a coordinator who chose Sesotho see no English words the
catalogue knows a Sesotho for, on every main page of their work (from the home page through
the request form to a consult with its thread, notes, outcome and call); and the pages'
scripts have every word they show in the catalogue the page carries."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import Engine
from sqlmodel import Session, select

from telemed import i18n
from telemed.accounts.models import User
from telemed.cases.models import Case
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.settings import Settings
from telemed.web import jscatalogue
from tests.fhir_helpers import Demo, seed_full_consult
from tests.helpers import PASSWORD

STATIC = Path(__file__).resolve().parents[1] / "telemed" / "static"
# t("...") in a script, the English text being the key (i18n.js).
T_CALL = re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]""")
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
PLACEHOLDER = re.compile(r"%\(\w+\)s")
# Shown in English on purpose: the language switch names each language in its own words.
ENGLISH_ON_PURPOSE = {"English"}
# Not read as the page's words: code, and the uptake charts' drawings (telemed/uptake draws
# them with English titles; their numbers are in the translated tables under each chart).
SKIPPED = {"script", "style", "svg"}
# Attributes whose text people read.
READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}


class _Text(HTMLParser):
    """The words of a page a reader sees: text outside scripts and styles, and the
    attributes read out or shown on hover."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.nodes: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self._skip += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value:
                self.nodes.append(" ".join(value.split()))

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self._skip:
            self.nodes.append(text)


def visible_text(page: str) -> list[str]:
    parser = _Text()
    parser.feed(page)
    return parser.nodes


class EnglishFinder:
    """The English msgids whose Sesotho differs, and where one shows up untranslated: a
    text equal to a short one (one or two words: "Patient", "Log out"), or a longer one
    anywhere in a text, its placeholders matching anything ("Consult %(id)s not found")."""

    def __init__(self) -> None:
        st = i18n.translations("st")
        english = [
            msgid
            for msgid in _msgids()
            if st.gettext(msgid) != msgid and msgid not in ENGLISH_ON_PURPOSE
        ]
        self.short = {m for m in english if len(_words(m)) <= 2 and not PLACEHOLDER.search(m)}
        self.long = [
            (m, re.compile(_pattern(m)))
            for m in english
            if m not in self.short and len(_words(m)) >= 3
        ]

    def find(self, nodes: list[str]) -> list[str]:
        found = [node for node in nodes if node.rstrip(":").strip() in self.short]
        joined = "\n".join(nodes)
        found += [m for m, pattern in self.long if pattern.search(joined)]
        return sorted(set(found))


def _msgids() -> list[str]:
    from babel.messages.pofile import read_po

    with i18n.catalogue_path("en").open("rb") as source:
        catalogue = read_po(source)
    return [
        message.id if isinstance(message.id, str) else message.id[0]
        for message in catalogue
        if message.id
    ]


def _words(text: str) -> list[str]:
    """The words of a msgid, not its placeholders or punctuation."""
    return [w for w in PLACEHOLDER.sub(" ", text).split() if any(c.isalpha() for c in w)]


def _pattern(msgid: str) -> str:
    """A msgid as a regular expression over one line of text: placeholders match any text,
    the rest literally, between word boundaries."""
    parts = PLACEHOLDER.split(" ".join(msgid.split()))
    body = "[^\n]+?".join(re.escape(part) for part in parts)
    return rf"(?<![\w]){body}(?![\w])" if body[:1].isalnum() else body


def test_the_finder_catches_an_english_string() -> None:
    """What the walk below relies on: a short label alone, a sentence inside a text and a
    message with a value are found; Sesotho and patient text are not."""
    finder = EnglishFinder()
    st = i18n.translations("st").gettext
    nodes = visible_text(
        "<p>Patient</p><p title='Log out'>x</p>"
        "<p>Note: consult 12 not found, sorry</p>"
        f"<p>{st('Patient')}</p><p>Fever five days, rash, red eyes.</p>"
    )
    assert finder.find(nodes) == ["Log out", "Patient", "consult %(consult_id)s not found"]
    assert finder.find(visible_text(f"<h1>{st('Consults of your facility')}</h1>")) == []


def _login(client: TestClient, db: Session, user: User, language: str = "st") -> None:
    """Log ``user`` in with ``language`` (Sesotho unless told) chosen in their profile."""
    stored = db.get(User, pk(user))
    assert stored is not None
    stored.language = language
    db.add(stored)
    db.commit()
    csrf = client.get("/login").cookies["telemed_login_csrf"]
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf}
    )
    assert response.status_code == 200, response.text
    client.cookies.delete("telemed_login_csrf")


@pytest.fixture
def demo(db: Session, settings: Settings, engine: Engine) -> Demo:
    return seed_full_consult(db, settings, engine)


def _pages(db: Session, demo: Demo) -> dict[str, list[str]]:
    consult = db.get(Consult, demo.consult_id)
    assert consult is not None
    case = db.exec(select(Case).where(Case.id == consult.case_id)).one()
    c = f"/consults/{demo.consult_id}"
    return {
        "clinician": [
            "/",
            "/consults/new",
            c,
            f"/cases/{pk(case)}/timeline",
            "/schedule",
            # Not /notifications: a notice is written in the recipient's language when it is
            # sent (tests/test_i18n.py), and these were sent while the demo users read English.
            "/network-test",
        ],
        "specialist": [
            "/",
            "/offers",
            c,
            f"{c}/notes/new",
            "/schedule",
            "/specialists/availability",
            "/specialists/profile",
            "/specialists/oncall",
        ],
        "coordinator": [
            "/",
            "/coordinator/specialists",
            "/coordinator/escalations",
            "/coordinator/oncall",
            "/coordinator/deliveries",
            "/coordinator/network",
            "/coordinator/uptake",
            f"/cases/{pk(case)}/audit",
        ],
    }


@pytest.mark.postgres_only
def test_every_main_page_of_each_role_is_in_sesotho(
    client: TestClient, db: Session, demo: Demo
) -> None:
    finder = EnglishFinder()
    people = {
        "clinician": demo.nurse,
        "specialist": demo.specialist,
        "coordinator": demo.coordinator,
    }
    untranslated: list[str] = []
    for role, paths in _pages(db, demo).items():
        client.cookies.clear()
        _login(client, db, people[role])
        for path in paths:
            page = client.get(path)
            assert page.status_code == 200, (role, path, page.status_code)
            assert '<html lang="st">' in page.text, (role, path)
            untranslated += [f"{role} {path}: {m!r}" for m in finder.find(visible_text(page.text))]
    assert untranslated == [], "English on a Sesotho page:\n" + "\n".join(untranslated)


def _script_strings() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(STATIC.rglob("*.js")):
        code = COMMENT.sub("", path.read_text())
        for match in T_CALL.finditer(code):
            found.setdefault(json.loads(f'"{match.group(1)}"'), path.name)
    return found


def test_the_scripts_catalogue_has_every_string_the_scripts_show() -> None:
    used = _script_strings()
    assert len(used) > 50  # the pattern finds the calls (a broken one would find none)
    missing = [
        f"{where}: {text!r}" for text, where in used.items() if text not in jscatalogue.MESSAGES
    ]
    assert missing == [], "add to telemed/web/jscatalogue.py:\n" + "\n".join(missing)
    table = json.loads(html.unescape(str(jscatalogue.catalogue("st"))))
    assert set(table) == set(jscatalogue.MESSAGES)  # every one has its Sesotho
    assert str(jscatalogue.catalogue("en")) == ""


def test_a_sesotho_page_carries_the_scripts_words_and_an_english_one_none(
    client: TestClient, db: Session, demo: Demo
) -> None:
    _login(client, db, demo.nurse)
    page = client.get("/").text
    match = re.search(r'<body data-i18n="([^"]*)">', page)
    assert match, "no data-i18n on the Sesotho page"
    table = json.loads(html.unescape(match.group(1)))
    st = i18n.translations("st").gettext
    assert table["Sending…"] == st("Sending…") != "Sending…"
    client.cookies.clear()  # an English page (the login page, no language chosen) has none
    assert "<body>" in client.get("/login", headers={"Accept-Language": "en"}).text


def test_an_error_is_translated_where_it_is_shown_and_keeps_its_code() -> None:
    """A service raises in English with its values apart; the reader gets their language
    (the API's body and the error page both come from ``problem_of``), the code and the
    English message of logs and audit rows stay as they were."""
    from telemed.errors import NotFound
    from telemed.i18n import N_
    from telemed.web.errors import problem_of

    exc = NotFound(N_("consult %(consult_id)s not found"), consult_id=7, field="consult_id")
    assert exc.message == str(exc) == "consult 7 not found"
    with i18n.use_language("st"):
        problem = problem_of(exc)
    assert problem.code == "not_found"
    assert problem.message == "puisano 7 ha e fumanehe"
    assert [f.message for f in problem.fields] == ["puisano 7 ha e fumanehe"]
    assert problem_of(exc).message == "consult 7 not found"  # an English reader


def test_the_consent_choices_and_how_it_was_given_are_in_sesotho(
    client: TestClient, db: Session, demo: Demo
) -> None:
    """What the walk above cannot see, since it looks for the catalogue's msgids: the consent
    forms' choices (request form and consult page), and how a recorded consent was given."""
    _login(client, db, demo.nurse)
    st = i18n.translations("st").gettext
    for path in ("/consults/new", f"/consults/{demo.consult_id}"):
        page = client.get(path).text
        for english in ("The patient", "Verbal, witnessed"):
            assert f">{english}<" not in page, (path, english)
            assert f">{escape(st(english))}<" in page, (path, english)
    consult = client.get(f"/consults/{demo.consult_id}").text
    assert f"· {escape(st('verbal'))}" in consult
    assert "· verbal" not in consult
    assert f">{escape(st('A video or audio call'))}<" in consult


def test_the_consult_history_reads_in_sesotho_and_stays_english_in_english(
    client: TestClient, db: Session, demo: Demo
) -> None:
    """The History list shows the English sentences the database keeps (two written here as
    a row from before the sentences were registered would be) in the reader's language,
    names as typed; an English reader sees them as stored."""
    from datetime import UTC, datetime

    from telemed.consults import service as consults

    consult = db.get(Consult, demo.consult_id)
    assert consult is not None
    at = datetime.now(UTC)
    consults.record_fact(db, consult, None, "outcome recorded: referral avoided", at)
    consults.record_fact(db, consult, None, "declined by Dr. Moloi: in theatre <3h>", at)
    db.commit()
    name = demo.specialist.full_name
    english = [
        "created",
        f"offered to {name}",
        f"accepted by {name}",
        f"session booked with {name}",
        "outcome recorded: referral avoided",
        "declined by Dr. Moloi: in theatre <3h>",
    ]
    sesotho = [
        "e entsoe",
        f"e fanoe ho {name}",
        f"e amohetsoe ke {name}",
        f"kopano e behiloe le {name}",
        "sephetho se ngotsoe: phetisetso e qobiloe",
        "e hannoe ke Dr. Moloi: in theatre <3h>",
    ]
    _login(client, db, demo.nurse)
    page = client.get(f"/consults/{demo.consult_id}").text
    for line, shown in zip(english, sesotho, strict=True):
        assert f'<div class="pre">{escape(shown)}</div>' in page, shown
        assert f'<div class="pre">{escape(line)}</div>' not in page, line
    client.cookies.clear()
    _login(client, db, demo.nurse, "en")
    page = client.get(f"/consults/{demo.consult_id}").text
    for line in english:
        assert f'<div class="pre">{escape(line)}</div>' in page, line
