"""Sesotho and English: the gettext catalogues, the language of the current request or
message, and how a visitor's language is chosen.

A core module (it imports nothing of the product) because pages, flash messages, errors and
the notices that leave by e-mail and SMS all translate the same way, and a domain never
imports the web layer.

The language in force is a context variable, never a global: the web layer sets it for each
request (from the user's profile, else the ``lang`` cookie, else ``Accept-Language``), and a
notice to another person is written inside ``use_language(recipient.language)``.

The catalogues are the ``.po`` files under ``telemed/locale`` (checked in and shipped in the
wheel). They are compiled in memory the first time a language is used and kept for the
life of the process, so there is no build step and no compiled ``.mo`` that could go stale
beside its source: ``make run``, ``make test`` and an installed wheel all read the ``.po``.
``tests/test_i18n.py`` compiles them with ``pybabel compile`` as CI's check.
"""

from __future__ import annotations

import gettext as stdlib_gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("en", "st")  # English, Sesotho
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "st": "Sesotho"}  # each in its own language
# Babel's CLDR locales for dates and numbers: Sesotho as written in Lesotho.
BABEL_LOCALES = {"en": "en", "st": "st_LS"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"

_language: ContextVar[str] = ContextVar("telemed_language", default=DEFAULT_LANGUAGE)


def normal(language: str | None) -> str | None:
    """``language`` if it is one we speak (``"st"``, ``"st-LS"``, ``"EN"``), else None."""
    if not language:
        return None
    code = language.strip().replace("_", "-").split("-")[0].lower()
    return code if code in LANGUAGES else None


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> stdlib_gettext.NullTranslations:
    """The compiled catalogue of ``language``, read once per process. Fuzzy entries are left
    out: a translation someone marked as doubtful is not shown to a clinician."""
    path = catalogue_path(language)
    if language not in LANGUAGES or not path.exists():
        return stdlib_gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=BABEL_LOCALES[language], domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def current_language() -> str:
    return _language.get()


def set_language(language: str | None) -> None:
    """Make ``language`` the one of the running request. Called by the web layer where the
    request's language becomes known; the context variable ends with the request."""
    _language.set(normal(language) or DEFAULT_LANGUAGE)


@contextmanager
def use_language(language: str | None) -> Iterator[str]:
    """Write something (a notice, an invitation) in ``language``, e.g. the recipient's,
    whatever the language of the request that causes it."""
    token = _language.set(normal(language) or DEFAULT_LANGUAGE)
    try:
        yield _language.get()
    finally:
        _language.reset(token)


def gettext(message: str) -> str:
    return translations(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_language.get()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:  # noqa: N802 (gettext's name for it, known to pybabel extract)
    """Mark ``message`` for the catalogue without translating it here: it is translated
    where it is shown, in the reader's language (an error's text, ``telemed.errors``; the
    strings of the pages' JavaScript, ``telemed.web.jscatalogue``)."""
    return message


class Joined(str):
    """Catalogue words joined by punctuation, e.g. "Time to acceptance: Median": a plain
    ``str`` in English wherever one is expected (a CSV heading), and each part translated
    where a reader sees it (the ``translated`` filter of the pages)."""

    template: str
    parts: tuple[str, ...]

    def __new__(cls, template: str, *parts: str) -> Joined:
        made = super().__new__(cls, template.format(*parts))
        made.template = template
        made.parts = parts
        return made

    def in_language(self) -> str:
        return self.template.format(*(gettext(part) for part in self.parts))


def babel_locale(language: str | None = None) -> Locale:
    return Locale.parse(BABEL_LOCALES[normal(language) or current_language()])


def _accept_language(header: str) -> list[str]:
    """The tags of an ``Accept-Language`` header, most wanted first (q=0 left out)."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _sep, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _q, _p, tag in sorted(weighted)]


def negotiate(
    profile: str | None = None, cookie: str | None = None, accept_language: str | None = None
) -> str:
    """The language to answer in: the user's profile setting, else the visitor's choice (the
    ``lang`` cookie), else what the browser prefers, else English."""
    for choice in (profile, cookie):
        chosen = normal(choice)
        if chosen:
            return chosen
    if accept_language:
        preferred = _accept_language(accept_language)
        found = Locale.negotiate(preferred, list(LANGUAGES), sep="-")
        if found is not None:
            return found.language
    return DEFAULT_LANGUAGE
