"""Turning the HTML consult form into ``ConsultCreate`` and errors back into field messages."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from telemed.consults.schemas import ConsultCreate, Vitals

CASE_FIELDS = ("patient_ref", "age_years", "birth_year", "sex")
TEXT_FIELDS = (
    "specialty",
    "urgency",
    "mode",
    "language",
    "question",
    "history",
    "examination",
    "current_treatment",
)
VITAL_FIELDS = tuple(Vitals.model_fields)
# Where an error on a whole sub-object is shown on the form.
OBJECT_ERROR_FIELD = {"case": "age_years", "vitals": "bp_systolic"}


def form_values(form: FormData) -> dict[str, str]:
    names = CASE_FIELDS + TEXT_FIELDS + VITAL_FIELDS
    return {name: str(form.get(name) or "").strip() for name in names}


def _blank_to_none(value: str) -> str | None:
    return value or None


def to_consult_create(values: dict[str, str], submit: bool) -> ConsultCreate:
    """Raises pydantic's ``ValidationError``; see ``field_errors``."""
    data: dict[str, Any] = {
        "case": {name: _blank_to_none(values[name]) for name in CASE_FIELDS},
        "vitals": {name: _blank_to_none(values[name]) for name in VITAL_FIELDS},
        "submit": submit,
    }
    data.update({name: values[name] for name in TEXT_FIELDS})
    return ConsultCreate.model_validate(data)


def field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        message = err["msg"].removeprefix("Value error, ")
        name = next(
            (p for p in reversed(loc) if p in CASE_FIELDS + TEXT_FIELDS + VITAL_FIELDS), None
        )
        if name is None:
            name = OBJECT_ERROR_FIELD.get(loc[0], "__all__") if loc else "__all__"
        errors.setdefault(name, message)
    return errors
