"""The code systems and identifier namespaces the export uses, in one place.

Standard systems where one exists (ICD-10 for diagnoses, LOINC and UCUM for vitals, HL7
terminology for statuses and categories); our own, under ``TELEMED``, for what no standard
codes (specialties, consult states, outcomes). A receiving system maps ours once, so they
must never change: add, do not rename.
"""

from __future__ import annotations

from dataclasses import dataclass

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"

#: Our own namespaces (stable URIs, not addresses to fetch).
TELEMED = "https://telemed.org.ls/fhir"
SPECIALTY = f"{TELEMED}/CodeSystem/specialty"
CONSULT_STATE = f"{TELEMED}/CodeSystem/consult-state"
OUTCOME = f"{TELEMED}/CodeSystem/consult-outcome"
REGISTRATION_BODY = f"{TELEMED}/CodeSystem/registration-body"
CONSULT_ID = f"{TELEMED}/sid/consult"
USER_ID = f"{TELEMED}/sid/user"
FACILITY_CODE = f"{TELEMED}/sid/facility"
APPOINTMENT_UID = f"{TELEMED}/sid/appointment-uid"
SHA256 = f"{TELEMED}/sid/sha256"


def patient_ref_system(facility_code: str) -> str:
    """A pseudonymous reference is unique within its facility only."""
    return f"{TELEMED}/sid/patient-ref/{facility_code.lower()}"


@dataclass(frozen=True)
class Vital:
    """One vital sign: the consult's column, its LOINC code and its UCUM unit."""

    column: str
    loinc: str
    display: str
    unit: str  # UCUM code
    unit_display: str


#: Vitals recorded with a consult, one Observation each (blood pressure is one Observation
#: with two components, as the FHIR vital-signs profile has it).
VITALS: tuple[Vital, ...] = (
    Vital("pulse_bpm", "8867-4", "Heart rate", "/min", "beats/minute"),
    Vital("respiratory_rate", "9279-1", "Respiratory rate", "/min", "breaths/minute"),
    Vital("temperature_c", "8310-5", "Body temperature", "Cel", "C"),
    Vital("spo2_percent", "59408-5", "Oxygen saturation by pulse oximetry", "%", "%"),
    Vital("weight_kg", "29463-7", "Body weight", "kg", "kg"),
)
BLOOD_PRESSURE = Vital("", "85354-9", "Blood pressure panel", "mm[Hg]", "mmHg")
SYSTOLIC = Vital("bp_systolic", "8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg")
DIASTOLIC = Vital("bp_diastolic", "8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg")

CONSULT_NOTE_LOINC = ("11488-4", "Consult note")
CONSENT_LOINC = ("59284-0", "Patient Consent")
