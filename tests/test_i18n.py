"""Sesotho and English: the catalogues compile and cover every string the code shows, the
language is chosen profile > cookie > Accept-Language > English, pages say which in
``<html lang>``, and a Sesotho reader gets Sesotho words and Sesotho dates, on the page and
in the e-mail."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from telemed import i18n
from telemed.accounts.models import Role, User
from telemed.consults.models import Consult
from telemed.notifications.models import Channel, OutboxMessage
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists, offers_of
from tests.helpers import PASSWORD, Users, consult_payload


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w*\}|%[sd]")


def _catalogue(language: str) -> Catalog:
    with i18n.catalogue_path(language).open("rb") as source:
        return read_po(source, locale=i18n.BABEL_LOCALES[language])


def _extracted(root: Path = ROOT) -> dict[str | tuple[str, ...], str]:
    """Every message the code and templates under ``root`` would show, extracted the way
    ``pybabel extract -F babel.cfg`` does (same mapping file), with where it was found."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str | tuple[str, ...], str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(root), method_map, options_map
    ):
        key = message if isinstance(message, str) else tuple(m for m in message if m)
        found.setdefault(key, f"{filename}:{lineno}")
    return found


def _untranslated(extracted: dict[str | tuple[str, ...], str], catalogue: Catalog) -> list[str]:
    missing = []
    for key, where in extracted.items():
        msgid = key if isinstance(key, str) else key[0]
        message = catalogue.get(msgid)
        strings = (
            []
            if message is None
            else ([message.string] if isinstance(message.string, str) else list(message.string))
        )
        if message is None or message.fuzzy or not strings or not all(strings):
            missing.append(f"{where}: {msgid!r}")
    return missing


def test_extraction_finds_the_pages_and_the_python_strings() -> None:
    """The mapping reaches both templates and Python (a broken babel.cfg finding nothing
    would make the next test pass vacuously)."""
    found = _extracted()
    assert "Log in" in found
    assert found["Log in"].startswith("telemed/templates/")
    assert found["Choose English or Sesotho."].endswith(".py") or ".py:" in str(
        found["Choose English or Sesotho."]
    )
    assert len(found) > 300


def test_every_extracted_message_is_translated_into_sesotho() -> None:
    untranslated = _untranslated(_extracted(), _catalogue("st"))
    assert untranslated == [], (
        "not translated in telemed/locale/st/LC_MESSAGES/messages.po (see telemed/locale/"
        "README.md):\n" + "\n".join(untranslated)
    )


def test_the_check_catches_a_new_untranslated_string(tmp_path: Path) -> None:
    """What the previous test does when someone wraps a string and forgets the catalogue."""
    pages = tmp_path / "telemed" / "templates"
    pages.mkdir(parents=True)
    (pages / "new.html").write_text(
        "{% trans %}Log in{% endtrans %} {% trans %}A string nobody translated{% endtrans %}"
    )
    (tmp_path / "telemed" / "new.py").write_text(
        'from telemed.i18n import gettext\nMESSAGE = gettext("Nor this one")\n'
    )
    missing = _untranslated(_extracted(tmp_path), _catalogue("st"))
    assert sorted(missing) == [
        "telemed/new.py:2: 'Nor this one'",
        "telemed/templates/new.html:1: 'A string nobody translated'",
    ]


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_placeholders_are_the_same_in_the_translation(language: str) -> None:
    for message in _catalogue(language):
        if not message.id or not message.string:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        wanted = sorted(set(PLACEHOLDER.findall(" ".join(ids))))
        for string in strings:
            if string:
                assert sorted(set(PLACEHOLDER.findall(string))) == wanted, (message.id, string)


def test_catalogues_compile_with_pybabel(tmp_path: Path) -> None:
    """What CI checks: ``pybabel compile`` accepts both catalogues (a broken .po fails it)."""
    for language in i18n.LANGUAGES:
        target = tmp_path / language / "LC_MESSAGES"
        target.mkdir(parents=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "babel.messages.frontend",
                "compile",
                "--statistics",
                "-i",
                str(i18n.catalogue_path(language)),
                "-o",
                str(target / "messages.mo"),
                "-l",
                language,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        assert (target / "messages.mo").stat().st_size > 0
    assert i18n.translations("st").gettext("Log in") != "Log in"


def test_negotiation_order() -> None:
    assert i18n.negotiate() == "en"
    assert i18n.negotiate(accept_language="st-LS, en;q=0.7") == "st"
    assert i18n.negotiate(accept_language="fr, st;q=0.3") == "st"
    assert i18n.negotiate(accept_language="en;q=0.4, st;q=0.9") == "st"
    assert i18n.negotiate(accept_language="fr-FR, de") == "en"
    assert i18n.negotiate(accept_language="st;q=0, en") == "en"
    assert i18n.negotiate(cookie="st", accept_language="en") == "st"
    assert i18n.negotiate(profile="en", cookie="st", accept_language="st") == "en"
    assert i18n.negotiate(profile="xx", cookie="zz", accept_language="st") == "st"


def _html_lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match, "no <html lang>"
    return match.group(1)


def _login_csrf(client: TestClient) -> str:
    return client.get("/login").cookies["telemed_login_csrf"]


def test_anonymous_visitor_gets_the_browser_language_then_their_choice(
    client: TestClient,
) -> None:
    english = client.get("/login")
    assert _html_lang(english.text) == "en"
    assert "<h1>Log in</h1>" in english.text

    sesotho = client.get("/login", headers={"Accept-Language": "st-LS,st;q=0.9,en;q=0.5"})
    assert _html_lang(sesotho.text) == "st"
    assert f"<h1>{i18n.translations('st').gettext('Log in')}</h1>" in sesotho.text

    csrf = _login_csrf(client)
    chosen = client.post(
        "/login/language",
        data={"language": "st", "csrf_token": csrf, "next": "/login"},
        follow_redirects=False,
    )
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/login"
    assert client.cookies["lang"] == "st"
    # The cookie beats a browser asking for English.
    page = client.get("/login", headers={"Accept-Language": "en"})
    assert _html_lang(page.text) == "st"


def test_login_page_switch_needs_its_csrf_token(client: TestClient) -> None:
    _login_csrf(client)
    refused = client.post("/login/language", data={"language": "st", "csrf_token": "forged"})
    assert refused.status_code == 403
    assert "lang" not in client.cookies


def test_an_unknown_language_is_refused_by_name(client: TestClient) -> None:
    csrf = _login_csrf(client)
    refused = client.post("/login/language", data={"language": "fr", "csrf_token": csrf})
    assert refused.status_code == 422
    assert "English" in refused.text
    assert "lang" not in client.cookies


def _page_login(client: TestClient, user: User) -> None:
    csrf = _login_csrf(client)
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf}
    )
    assert response.status_code == 200, response.text


def _csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_profile_language_beats_cookie_and_browser_and_is_stored(
    client: TestClient, users: Users, db: Session
) -> None:
    clinician = users.make(Role.clinician)
    _page_login(client, clinician)
    home = client.get("/", headers={"Accept-Language": "st"})
    # Not chosen yet: the profile says English (the default), which beats the browser.
    assert _html_lang(home.text) == "en"
    switched = client.post(
        "/language",
        data={"language": "st", "csrf_token": _csrf_of(home.text), "next": "/"},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    db.expire_all()
    stored = db.get(User, clinician.id)
    assert stored is not None
    assert stored.language == "st"
    client.cookies.set("lang", "en")  # a stale cookie does not beat the profile
    page = client.get("/", headers={"Accept-Language": "en"})
    assert _html_lang(page.text) == "st"
    st = i18n.translations("st").gettext
    assert st("Log out") in page.text
    assert st("New consult") in page.text


def test_the_login_page_after_logout_and_a_page_without_a_session_keep_the_profile_language(
    client: TestClient, users: Users, db: Session
) -> None:
    """Login sets the ``lang`` cookie from the profile: a phone seldom asks for Sesotho."""
    clinician = users.make(Role.clinician)
    clinician.language = "st"
    db.add(clinician)
    db.commit()
    assert _html_lang(client.get("/login").text) == "en"  # nothing chosen on this browser yet
    _page_login(client, clinician)
    assert _html_lang(client.get("/no-such-page").text) == "st"  # no session resolved there
    home = client.get("/").text
    out = client.post("/logout", data={"csrf_token": _csrf_of(home)})
    assert out.status_code == 200
    assert _html_lang(out.text) == "st"
    assert i18n.translations("st").gettext("Log in") in out.text


def test_header_switch_needs_the_session_csrf_token(
    client: TestClient, users: Users, db: Session
) -> None:
    clinician = users.make(Role.clinician)
    _page_login(client, clinician)
    refused = client.post("/language", data={"language": "st", "csrf_token": "forged"})
    assert refused.status_code == 403
    db.expire_all()
    stored = db.get(User, clinician.id)
    assert stored is not None
    assert stored.language == "en"


def test_sesotho_dates_come_from_babel() -> None:
    from telemed.timefmt import local_time

    when = datetime(2026, 7, 15, 9, 0, tzinfo=UTC)
    zone = ZoneInfo("Africa/Maseru")
    assert local_time(when, zone) == "15 Jul 2026 11:00 SAST"
    with i18n.use_language("st"):
        assert local_time(when, zone) == "15 Upu 2026 11:00 SAST"
        assert local_time(when, zone, "%A %d %B") == "Laboraro 15 Phupu SAST"
    assert i18n.current_language() == "en"  # use_language ends with its block


def _prefer(db: Session, user: User, language: str, phone: str | None = None) -> None:
    """The user's profile setting, as the header's switch stores it (and a phone for SMS)."""
    db.rollback()
    stored = db.get(User, user.id)
    assert stored is not None
    stored.language = language
    stored.phone = phone
    db.add(stored)
    db.commit()


def test_a_sesotho_clinician_works_in_sesotho_with_babel_dates(
    client: TestClient, users: Users, db: Session, login: LoginFn
) -> None:
    clinician = users.make(Role.clinician)
    consult = login(clinician).post("/api/v1/consults", consult_payload()).json()
    _prefer(db, clinician, "st")
    _page_login(client, clinician)
    st = i18n.translations("st").gettext

    home = client.get("/")
    assert _html_lang(home.text) == "st"
    assert st("Consults of your facility") in home.text
    assert st("Patient") in home.text
    assert "Consults of your facility" not in home.text
    stored = db.get(Consult, consult["id"])
    assert stored is not None
    zone = ZoneInfo(clinician.timezone)
    sesotho_day = format_datetime(stored.created_at, "dd MMM HH:mm", tzinfo=zone, locale="st_LS")
    english_day = format_datetime(stored.created_at, "dd MMM HH:mm", tzinfo=zone, locale="en")
    assert sesotho_day != english_day  # month names differ: the test can tell them apart
    assert sesotho_day in home.text
    assert english_day not in home.text

    page = client.get(f"/consults/{consult['id']}")
    assert page.status_code == 200
    assert st("Clinical question") in page.text
    assert st("Vitals") in page.text
    assert st("Consent") in page.text
    # Patient text is shown as typed, not translated.
    assert "Kawasaki disease?" in page.text


def test_an_offer_email_is_in_the_recipient_language(
    specialists: Specialists, users: Users, db: Session, login: LoginFn
) -> None:
    mosotho = specialists.make()
    londoner = specialists.make(time_zone="Europe/London")
    _prefer(db, mosotho, "st", phone="+26658123456")
    _prefer(db, londoner, "en", phone="+447700900123")
    nurse = login(users.make(Role.clinician))  # English, and her request makes the offers
    consult = nurse.post("/api/v1/consults", consult_payload(urgency="emergency")).json()
    assert consult["state"] == "offered"
    db.rollback()

    def email_to(user: User, channel: Channel = Channel.email) -> OutboxMessage:
        [message] = db.exec(
            select(OutboxMessage).where(
                OutboxMessage.user_id == user.id, OutboxMessage.channel == channel
            )
        ).all()
        return message

    st = i18n.translations("st").gettext
    sesotho = email_to(mosotho)
    assert sesotho.subject.startswith("TŠOHANYETSO:")
    assert st("paediatrics") in sesotho.subject
    assert "Amohela kapa hana pele ho" in sesotho.body
    # The deadline's day and month in Sesotho (Babel's st_LS), in the specialist's zone.
    offer = offers_of(db, consult["id"])[0]
    deadline = format_datetime(
        offer.expires_at, "EEE dd MMM", tzinfo=ZoneInfo(mosotho.timezone), locale="st_LS"
    )
    assert deadline in sesotho.body

    english = email_to(londoner)
    assert english.subject.startswith("EMERGENCY: New emergency paediatrics consult")
    assert "Accept or decline by" in english.body
    # The emergency SMS too (telemed.offers.notices), each in its reader's language.
    assert email_to(mosotho, Channel.sms).body.startswith("Telemed TŠOHANYETSO puisano")
    assert email_to(londoner, Channel.sms).body.startswith("Telemed EMERGENCY consult")


@pytest.mark.parametrize("language", ["en", "st"])
def test_each_catalogue_reads_without_a_complaint(language: str) -> None:
    """An entry that lost its msgstr (a merge of two catalogue blocks) is read with a warning
    and dropped, silently untranslated: refuse it here instead."""
    from babel.messages.pofile import read_po

    path = Path(__file__).parent.parent / "telemed" / "locale" / language / "LC_MESSAGES"
    with (path / "messages.po").open("rb") as po:
        read_po(po, abort_invalid=True)


def test_words_inside_an_error_are_translated_with_it() -> None:
    """A refused upload names the accepted types: words, translated with the message, while
    data (the extension sent) and the English message for the audit trail stay as they are."""
    from telemed.attachments.media import declared_format
    from telemed.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        declared_format("scan.bmp", "image/bmp")
    assert refused.value.message.endswith(
        "send JPEG, PNG, HEIC, PDF or short audio (Ogg/Opus, M4A, WebM)"
    )
    with i18n.use_language("st"):
        shown = refused.value.shown()
    assert "kapa molaetsa o mokhutšoanyane oa lentsoe" in shown
    assert ".bmp" in shown
    assert "short audio" not in shown
