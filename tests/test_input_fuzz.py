"""No input gives a 500 (issue 13, item 3), proved by generating it.

Forms: every page route of the route table is opened as each kind of user, every form on
it is read (action, fields, file inputs), and hypothesis fills the fields with hostile
values (control characters, lone surrogates, direction overrides, numbers past any
column, dates in the years 1 and 9999, odd zones, very long text) and posts them.
JSON: schemathesis generates requests that break the schema (negative mode) for every
operation of ``/openapi.json``. Every answer must be below 500. Bounded for CI.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from telemed.accounts.models import Role
from tests.conftest import LoginFn
from tests.helpers import ApiClient, Users, consult_payload
from tests.test_api_schema import bounded, check_operation, operations

FORM_EXAMPLES = 6  # per form
JSON_EXAMPLES = 3  # per operation

HOSTILE = st.one_of(
    st.text(max_size=40),  # any code point, controls and surrogates included
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "\x1b[31m",
            "Dr \u202eecilA",
            "line\r\nbreak",
            "-1",
            "0",
            str(2**31),
            str(2**63),
            "9" * 40,
            "1e400",
            "NaN",
            "0001-01-01",
            "9999-12-31",
            "9999-12-31T23:45",
            "9999-12-31T23:45+14:00",
            "0001-01-01T00:00-12:00",
            "localtime",
            "posixrules",
            "Factory",
            "../../etc/passwd",
            "x" * 70_000,
        ]
    ),
)


@dataclass
class Form:
    action: str
    fields: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)


class _Forms(HTMLParser):
    """The POST forms of a page: where they go and what they send."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            method = (a.get("method") or "get").lower()
            self.current = Form(a.get("action") or "") if method == "post" else None
        elif tag in ("input", "select", "textarea") and self.current and a.get("name"):
            name = a["name"] or ""
            if name == "csrf_token":
                return
            (self.current.files if a.get("type") == "file" else self.current.fields).add(name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.current is not None:
            if self.current.action.startswith("/"):
                self.forms.append(self.current)
            self.current = None


def _routes(routes: list[Any]) -> Iterator[Any]:
    """The application's routes, with those of included routers (FastAPI keeps an included
    router as one entry and resolves its routes on demand)."""
    for route in routes:
        if hasattr(route, "effective_candidates"):
            yield from _routes(route.effective_candidates())
        else:
            yield route


def _pages(app: Any, consult_id: int) -> Iterator[str]:
    """Every page (GET, not the API) with its path filled in."""
    for route in _routes(app.routes):
        path = getattr(route, "path", "")
        if "GET" not in (getattr(route, "methods", None) or ()):
            continue
        if path.startswith(("/api/", "/fhir/", "/static")) or path in ("/docs", "/openapi.json"):
            continue
        yield re.sub(
            r"\{(\w+)(:\w+)?\}",
            lambda m: str(consult_id if m.group(1) == "consult_id" else 1),
            path,
        )


def _forms_of(user: ApiClient, consult_id: int) -> dict[str, Form]:
    found: dict[str, Form] = {}
    for path in _pages(user.client.app, consult_id):
        page = user.client.get(path, follow_redirects=False)
        assert page.status_code < 500, (path, page.status_code)
        if "text/html" not in page.headers.get("content-type", ""):
            continue
        parser = _Forms()
        parser.feed(page.text)
        for form in parser.forms:
            known = found.setdefault(form.action.split("?")[0], Form(form.action.split("?")[0]))
            known.fields |= form.fields
            known.files |= form.files
    return found


def _post_hostile(user: ApiClient, form: Form, crashes: list[str]) -> None:
    """Post ``form`` a few times with hostile values in a random choice of its fields."""

    @given(data=st.data())
    @bounded(FORM_EXAMPLES)
    def post(data: st.DataObject) -> None:
        names = sorted(form.fields)
        chosen = data.draw(st.sets(st.sampled_from(names))) if names else set()
        values = {name: data.draw(HOSTILE) for name in chosen}
        parts: dict[str, Any] = {
            name: (None, value.encode("utf-8", "surrogatepass")) for name, value in values.items()
        }
        for name in form.files:
            # A file name travels as UTF-8 in the part's header: a lone surrogate cannot.
            filename = data.draw(HOSTILE).encode("utf-8", "replace").decode() or "x.jpg"
            parts[name] = (filename, b"\xff\xd8\xff\xe0", "image/jpeg")
        answer = user.client.post(
            form.action,
            data={"csrf_token": user.csrf},
            files=parts or None,
            follow_redirects=False,
        )
        if answer.status_code >= 500:
            crashes.append(f"{form.action} {values!r:.300}: {answer.status_code}")

    post()


@pytest.mark.postgres_only
def test_no_form_field_gives_a_500(users: Users, login: LoginFn) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    people = [
        nurse,
        login(users.make(Role.specialist)),
        login(users.make(Role.coordinator)),
        login(users.make(Role.admin)),
    ]
    targets = [(user, form) for user in people for form in _forms_of(user, consult_id).values()]
    assert len(targets) >= 20, [f.action for _, f in targets]  # the pages were read
    crashes: list[str] = []
    for user, form in targets:
        if form.action != "/logout":
            _post_hostile(user, form, crashes)
    assert not crashes, "\n".join(crashes)


@pytest.mark.postgres_only
def test_no_json_field_gives_a_500(users: Users, login: LoginFn) -> None:
    coordinator = login(users.make(Role.coordinator))
    crashes: list[str] = []
    for operation in operations(coordinator):
        check_operation(
            operation,
            coordinator,
            [not_a_server_error],
            crashes,
            JSON_EXAMPLES,
            GenerationMode.NEGATIVE,
        )
    assert not crashes, "\n\n".join(crashes)
