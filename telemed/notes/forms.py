"""The note form: HTML fields to ``NoteFields`` and errors back to fields."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from telemed.form_errors import field_sentences
from telemed.i18n import N_
from telemed.notes.schemas import NoteAmend, NoteFields, NotePublic

TEXT_FIELDS = ("subjective", "objective", "assessment", "plan", "follow_up_instruction")
FORM_FIELDS = (*TEXT_FIELDS, "diagnoses", "follow_up_on", "reason")
# The fields' labels as ``note_form.html`` shows them, for the error sentences.
LABELS = {
    "subjective": N_("Subjective"),
    "objective": N_("Objective"),
    "assessment": N_("Assessment"),
    "plan": N_("Plan"),
    "follow_up_instruction": N_("Instruction"),
    "diagnoses": N_("ICD-10 diagnoses"),
    "follow_up_on": N_("Review on"),
    "reason": N_("Reason for the amendment"),
}


def form_values(form: FormData) -> dict[str, str]:
    return {name: str(form.get(name) or "").strip() for name in FORM_FIELDS}


def values_of(note: NotePublic) -> dict[str, str]:
    values = {name: str(getattr(note, name)) for name in TEXT_FIELDS}
    values["diagnoses"] = ", ".join(d.code for d in note.diagnoses)
    values["follow_up_on"] = note.follow_up_on.isoformat() if note.follow_up_on else ""
    return values


def _data(values: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {name: values[name] for name in TEXT_FIELDS}
    data["diagnoses"] = [c for c in re.split(r"[,;\s]+", values["diagnoses"]) if c]
    data["follow_up_on"] = values["follow_up_on"] or None
    return data


def to_fields(values: dict[str, str]) -> NoteFields:
    return NoteFields.model_validate(_data(values))


def to_amendment(values: dict[str, str]) -> NoteAmend:
    return NoteAmend.model_validate({**_data(values), "reason": values["reason"]})


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Each field's first error as a sentence in the reader's language."""
    return field_sentences(exc, LABELS, lambda loc: str(loc[0]) if loc else "__all__")


def refusal(field: str | None, message: str) -> dict[str, str]:
    """A service's refusal on the form: under its field when the form has one, else at the
    top (a locked note's ``status``, an amended ``version``), never lost."""
    return {field if field in FORM_FIELDS else "__all__": message}


def follow_up_in_past(values: dict[str, str], today: date) -> bool:
    try:
        return bool(values["follow_up_on"]) and date.fromisoformat(values["follow_up_on"]) < today
    except ValueError:
        return False
