"""The consent fields of the pages' forms (the consult request form and the consult page):
form values in, schema out, and pydantic's errors back to the fields they belong to."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from telemed.consent.models import Consenter, ConsentMethod, ConsentScope
from telemed.consent.schemas import ConsentAtRequest, ConsentIn, WithdrawIn
from telemed.form_errors import field_sentences
from telemed.i18n import N_, gettext

#: On the request form every consent field is prefixed, beside the consult's own fields.
PREFIX = "consent_"
REQUEST_FIELDS = (
    "sharing",
    "call",
    "consenter",
    "guardian_name",
    "guardian_relationship",
    "method",
    "witness_name",
)
RECORD_FIELDS = (
    "scope",
    "consenter",
    "guardian_name",
    "guardian_relationship",
    "method",
    "witness_name",
    "photo_attachment_id",
    "reason",
)

OPTIONS = {
    "scope": [
        (ConsentScope.sharing.value, N_("Share the case with a specialist abroad")),
        (ConsentScope.call.value, N_("A video or audio call")),
    ],
    "consenter": [
        (Consenter.patient.value, N_("The patient")),
        (Consenter.guardian.value, N_("A guardian")),
    ],
    "method": [
        (ConsentMethod.verbal.value, N_("Verbal")),
        (ConsentMethod.witnessed.value, N_("Verbal, witnessed")),
        (ConsentMethod.written.value, N_("Written (photo of the signed form)")),
    ],
}


def options() -> dict[str, list[tuple[str, str]]]:
    """The choices of the consent forms in the reader's language: called when a page is made,
    since ``OPTIONS`` holds the English msgids."""
    return {name: [(v, gettext(text)) for v, text in pairs] for name, pairs in OPTIONS.items()}


def request_values(form: FormData) -> dict[str, str]:
    return {PREFIX + name: str(form.get(PREFIX + name) or "").strip() for name in REQUEST_FIELDS}


def request_defaults() -> dict[str, str]:
    return {PREFIX + "consenter": Consenter.patient.value, PREFIX + "method": "verbal"}


def to_consent_at_request(values: dict[str, str]) -> ConsentAtRequest | None:
    """None when neither box is ticked (the consult then waits for consent). Raises
    pydantic's ``ValidationError``; see :func:`request_errors`."""
    sharing, call = bool(values[PREFIX + "sharing"]), bool(values[PREFIX + "call"])
    if not (sharing or call):
        return None
    data: dict[str, Any] = {
        name: values[PREFIX + name] for name in REQUEST_FIELDS if name not in ("sharing", "call")
    }
    return ConsentAtRequest.model_validate(data | {"sharing": sharing, "call": call})


# The fields' labels as the forms show them, for the error sentences.
LABELS = {
    "scope": N_("Consent to"),
    "consenter": N_("Given by"),
    "method": N_("How"),
    "guardian_name": N_("Guardian's name"),
    "guardian_relationship": N_("Relationship"),
    "witness_name": N_("Witness's name"),
    "photo_attachment_id": N_("Photo of the signed form"),
    "reason": N_("Reason"),
}


def _errors(exc: ValidationError, prefix: str) -> dict[str, str]:
    sentences = field_sentences(exc, LABELS, lambda loc: str(loc[0]) if loc else "__all__")
    return {
        (prefix + name if name != "__all__" else name): text for name, text in sentences.items()
    }


def request_errors(exc: ValidationError) -> dict[str, str]:
    return _errors(exc, PREFIX)


def field_of(service_field: str | None) -> str:
    """A service error's field (``consent.witness_name``) as the request form names it."""
    return PREFIX + service_field.removeprefix("consent.") if service_field else "__all__"


#: The consult page's two consent forms, each with its own field names (and ids).
RECORD_PREFIX = "consent_form_"
WITHDRAW_PREFIX = "withdraw_"


def record_values(form: FormData, prefix: str) -> dict[str, str]:
    """The form's fields without their ``prefix``."""
    return {name: str(form.get(prefix + name) or "").strip() for name in RECORD_FIELDS}


def to_consent_in(values: dict[str, str]) -> ConsentIn:
    data: dict[str, Any] = {
        name: values[name] for name in RECORD_FIELDS if values[name] and name != "reason"
    }
    return ConsentIn.model_validate(data)


def to_withdraw_in(values: dict[str, str]) -> WithdrawIn:
    names = ("scope", "consenter", "guardian_name", "guardian_relationship", "reason")
    return WithdrawIn.model_validate({name: values[name] for name in names if values[name]})


def record_errors(exc: ValidationError) -> dict[str, str]:
    """Unprefixed: the view names them for its form."""
    return _errors(exc, "")
