"""The admin pages' forms: fields in, ``UserCreate`` / ``FacilityIn`` out, and every refusal
back as a sentence beside its field (``telemed.form_errors``)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from telemed.form_errors import field_sentences
from telemed.i18n import N_

USER_FIELDS = ("email", "full_name", "role", "facility_code", "timezone", "phone", "password")
FACILITY_FIELDS = ("code", "name", "kind", "district_id")

LABELS = {
    "email": N_("E-mail"),
    "full_name": N_("Full name"),
    "role": N_("Role"),
    "facility_code": N_("Facility"),
    "timezone": N_("Time zone"),
    "phone": N_("Mobile phone"),
    "password": N_("Password"),
    "code": N_("Code"),
    "name": N_("Name"),
    "kind": N_("Kind"),
    "district_id": N_("District"),
}


def values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(form.get(name) or "").strip() for name in names}


def user_data(values: dict[str, str]) -> dict[str, Any]:
    """Blank optional fields are absent (the service picks the role's default zone)."""
    data: dict[str, Any] = dict(values)
    for optional in ("facility_code", "timezone", "phone"):
        if not data[optional]:
            data[optional] = None
    return data


def errors(exc: ValidationError) -> dict[str, str]:
    return field_sentences(exc, LABELS, lambda loc: str(loc[0]) if loc else "__all__")
