"""Turning the HTML consult form into ``ConsultCreate`` and errors back into field messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from telemed.consults.schemas import ConsultCreate, Vitals
from telemed.form_errors import field_sentences
from telemed.i18n import N_

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
# The fields' labels, as the form shows them (``consult_new.html``), for the error sentences.
LABELS = {
    "patient_ref": N_("Patient reference"),
    "age_years": N_("Age (years)"),
    "birth_year": N_("Birth year"),
    "sex": N_("Sex"),
    "specialty": N_("Specialty"),
    "urgency": N_("Urgency"),
    "mode": N_("Preferred mode"),
    "language": N_("Language"),
    "question": N_("Clinical question"),
    "history": N_("History"),
    "examination": N_("Examination"),
    "current_treatment": N_("Current treatment"),
    "bp_systolic": N_("BP systolic (mmHg)"),
    "bp_diastolic": N_("BP diastolic (mmHg)"),
    "pulse_bpm": N_("Pulse (/min)"),
    "respiratory_rate": N_("Resp. rate (/min)"),
    "temperature_c": N_("Temperature (°C)"),
    "spo2_percent": N_("SpO₂"),
    "weight_kg": N_("Weight (kg)"),
}
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


def _place(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    name = next((p for p in reversed(parts) if p in LABELS), None)
    if name is not None:
        return name
    return OBJECT_ERROR_FIELD.get(parts[0], "__all__") if parts else "__all__"


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Each field's first error as a sentence in the reader's language."""
    return field_sentences(exc, LABELS, _place)
