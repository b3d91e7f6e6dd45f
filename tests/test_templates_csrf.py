"""Every POST form of every template carries its CSRF field through ``csrf_input()``, and no
template writes the hidden field by hand, so a new form copies the macro and cannot forget the
token or misspell the field (the server refuses such a form with 403 only when someone
presses its button)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telemed.web.templating import TEMPLATES_DIR, templates

FORM = re.compile(r"<form\b(?P<attrs>[^>]*)>(?P<body>.*?)</form\s*>", re.IGNORECASE | re.DOTALL)
POST = re.compile(r"""\bmethod\s*=\s*["']?post\b""", re.IGNORECASE)
MACRO = re.compile(r"\{\{-?\s*csrf_input\(")
HAND_WRITTEN = re.compile(r"""name\s*=\s*["']?csrf_token\b""", re.IGNORECASE)


def post_forms(source: str) -> list[str]:
    """The POST forms of a template, each from its tag to its closing tag."""
    return [m.group(0) for m in FORM.finditer(source) if POST.search(m.group("attrs"))]


def forms_without_macro(source: str) -> list[str]:
    return [form for form in post_forms(source) if not MACRO.search(form)]


def all_templates() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(Path(TEMPLATES_DIR).glob("*.html"))}


def test_the_checks_catch_a_form_without_the_macro_and_a_hand_written_field() -> None:
    """The two checks below on a known answer, so that they can fail."""
    page = """
      <form method="get" action="/search"><input name="q"></form>
      <form method='POST' action="/a">{{ csrf_input() }}<button>A</button></form>
      <form class="card" method=post action="/b">
        <input type="hidden" name="csrf_token" value="{{ csrf_token }}"><button>B</button>
      </form>"""
    assert len(post_forms(page)) == 2
    missing = forms_without_macro(page)
    assert len(missing) == 1
    assert 'action="/b"' in missing[0]
    assert HAND_WRITTEN.search(page)


def test_every_post_form_uses_the_csrf_macro() -> None:
    sources = all_templates()
    forms = {name: post_forms(source) for name, source in sources.items()}
    # The pages' POST forms (logout, consult, notes, offers, coordinator, ...): the parsing
    # finds them all, so the check below is not passing on nothing.
    assert sum(len(found) for found in forms.values()) >= 20
    assert forms["login.html"]
    assert forms["base.html"]
    missing = {name: forms_without_macro(source) for name, source in sources.items()}
    assert {name: found for name, found in missing.items() if found} == {}


def test_no_template_writes_the_csrf_field_by_hand() -> None:
    by_hand = [name for name, source in all_templates().items() if HAND_WRITTEN.search(source)]
    assert by_hand == []


def test_login_and_registration_pass_their_pre_session_token() -> None:
    """They have no session yet: the token is the one of their own cookie (see
    telemed/accounts/views.py and telemed/directory/views.py), never the session's."""
    sources = all_templates()
    assert "csrf_input(login_csrf)" in sources["login.html"]
    assert "csrf_input(register_csrf)" in sources["specialist_register.html"]


def render(source: str, **context: object) -> str:
    return templates.env.from_string(source).render(**context)


def test_the_macro_renders_the_sessions_token_or_the_one_passed() -> None:
    field = '<input type="hidden" name="csrf_token" value="{}">'
    assert render("{{ csrf_input() }}", csrf_token="s-1") == field.format("s-1")
    assert render("{{ csrf_input(t) }}", csrf_token="s-1", t="pre-2") == field.format("pre-2")
    # Inside a block of the page (the panels are included, not imported: same context).
    assert render("{% for _ in [1] %}{{ csrf_input() }}{% endfor %}", csrf_token="s-3") == (
        field.format("s-3")
    )
    # Escaped like any value: a token never breaks out of its attribute.
    assert render("{{ csrf_input() }}", csrf_token='a"><b') == field.format("a&#34;&gt;&lt;b")


@pytest.mark.parametrize("context", [{}, {"csrf_token": None}, {"csrf_token": ""}])
def test_a_form_without_any_token_is_an_error_in_the_page(context: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="no session CSRF token"):
        render("{{ csrf_input() }}", **context)
