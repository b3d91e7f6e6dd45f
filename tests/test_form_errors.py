"""Validation errors on a page are sentences in the reader's language beside their field
(``telemed.form_errors``); the JSON API keeps pydantic's machine-readable form."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, EmailStr, Field, ValidationError
from sqlmodel import Session

from telemed import i18n
from telemed.accounts.models import Role, User
from telemed.form_errors import field_sentences
from tests.conftest import LoginFn
from tests.helpers import Users, consult_payload
from tests.test_pages import form_fields


def _error_of(page: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{field}-error" role="alert">([^<]*)</p>', page)
    assert found, f"no error beside {field}"
    return html.unescape(found.group(1))


def test_a_bad_request_form_speaks_english_then_sesotho_beside_each_field(
    users: Users, login: LoginFn, db: Session
) -> None:
    nurse = users.make(Role.clinician)
    api = login(nurse)
    bad = form_fields(sex="alien", patient_ref="", age_years="six", urgency="whenever")
    page = api.client.post("/consults/new", data={**bad, "csrf_token": api.csrf})
    assert page.status_code == 422
    assert _error_of(page.text, "sex") == "Choose one of the options for Sex."
    assert _error_of(page.text, "patient_ref") == "Fill in Patient reference."
    assert _error_of(page.text, "age_years") == "Age (years) must be a whole number."
    assert _error_of(page.text, "urgency") == "Choose one of the options for Urgency."
    for pydantic_words in ("Input should", "String should", "Value error"):
        assert pydantic_words not in page.text

    stored = db.get(User, nurse.id)
    assert stored is not None
    stored.language = "st"
    db.add(stored)
    db.commit()
    sesotho = login(stored)
    page = sesotho.client.post("/consults/new", data={**bad, "csrf_token": sesotho.csrf})
    assert page.status_code == 422
    assert _error_of(page.text, "sex") == "Khetha e 'ngoe ea likhetho bakeng sa Bong."
    assert _error_of(page.text, "age_years") == "Lilemo e tlameha ho ba nomoro e feletseng."
    assert _error_of(page.text, "patient_ref") == "Tlatsa Nomoro ea mokuli."
    assert "Choose one of the options" not in page.text


def test_the_api_keeps_its_machine_readable_refusal(users: Users, login: LoginFn) -> None:
    api = login(users.make(Role.clinician))
    refused = api.post("/api/v1/consults", consult_payload(urgency="whenever"))
    assert refused.status_code == 422
    fields = refused.json()["error"]["fields"]
    assert fields[0]["field"] == "urgency"
    assert fields[0]["message"].startswith("Input should be")


def test_a_query_refused_on_a_page_is_a_sentence(users: Users, login: LoginFn) -> None:
    api = login(users.make(Role.clinician))
    page = api.client.get("/", params={"page": "two"})
    assert page.status_code == 422
    assert "page must be a whole number." in page.text
    assert "Input should" not in page.text


class _Form(BaseModel):
    count: int = Field(ge=1, le=10)
    code: str = Field(min_length=2, max_length=4, pattern=r"^[A-Z]+$")
    day: date
    tags: list[str] = Field(min_length=1)
    email: EmailStr


@pytest.mark.parametrize(
    ("data", "field", "english", "sesotho"),
    [
        (
            {"count": "0"},
            "count",
            "Count must be 1 or more.",
            "Count e tlameha ho ba 1 kapa ho feta.",
        ),
        (
            {"count": "11"},
            "count",
            "Count must be 10 or less.",
            "Count e tlameha ho ba 10 kapa ka tlase.",
        ),
        ({"code": "x"}, "code", "Code needs at least 2 characters.", None),
        ({"code": "ABCDE"}, "code", "Code can have at most 4 characters.", None),
        ({"code": "ab"}, "code", "Code is not in the expected form; check what you typed.", None),
        ({"day": "soon"}, "day", "Day must be a date such as 2026-04-01.", None),
        ({"tags": []}, "tags", "Choose at least one for Tags.", None),
        (
            {"email": "nobody"},
            "email",
            "Enter an e-mail address such as name@example.org for E-mail.",
            None,
        ),
        ({}, "count", "Fill in Count.", "Tlatsa Count."),
    ],
)
def test_each_kind_of_error_has_its_sentence(
    data: dict[str, object], field: str, english: str, sesotho: str | None
) -> None:
    full = {"count": 5, "code": "AB", "day": "2026-04-01", "tags": ["a"], "email": "a@example.org"}
    if not data:
        full.pop("count")
    labels = {"count": "Count", "code": "Code", "day": "Day", "tags": "Tags", "email": "E-mail"}
    with pytest.raises(ValidationError) as refused:
        _Form.model_validate({**full, **data})
    with i18n.use_language("en"):
        assert field_sentences(refused.value, labels)[field] == english
    if sesotho is not None:
        with i18n.use_language("st"):
            assert field_sentences(refused.value, labels)[field] == sesotho


def test_the_registration_form_refuses_a_page_with_no_language(client: TestClient) -> None:
    client.get("/specialists/register")
    token = client.cookies["telemed_register_csrf"]
    page = client.post(
        "/specialists/register",
        data={"full_name": "Dr X", "email": "x@example.org", "csrf_token": token},
    )
    assert page.status_code == 422
    assert _error_of(page.text, "languages").startswith("Tick at least one language")
    assert _error_of(page.text, "country") == "Fill in Country."
