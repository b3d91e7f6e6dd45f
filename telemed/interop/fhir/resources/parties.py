"""Who and where: the patient (pseudonymous), practitioners, their roles, the facility.

The platform knows a patient only by the facility's pseudonymous reference, a sex and an
age or birth year; the Patient says so in its security label (``PSEUDED``) and carries no
name, address or contact. Practitioners carry their name and, for specialists, their
registration; never their e-mail or phone.
"""

from __future__ import annotations

from telemed.accounts.models import Role, User
from telemed.db import pk
from telemed.interop.fhir import codes
from telemed.interop.fhir.record import ConsultRecord
from telemed.interop.fhir.resources.common import (
    Resource,
    coding,
    compact,
    concept,
    identifier,
    ref,
    text_concept,
)

AGE_EXTENSION = f"{codes.TELEMED}/StructureDefinition/age-at-registration"


def patient(record: ConsultRecord) -> Resource:
    case = record.case
    resource: Resource = {
        "resourceType": "Patient",
        "id": str(pk(case)),
        "meta": {"security": [coding(codes.OBSERVATION_VALUE, "PSEUDED", "pseudonymized")]},
        "identifier": [
            identifier(codes.patient_ref_system(record.facility.code), case.patient_ref)
        ],
        "gender": str(case.sex),  # our values are FHIR's AdministrativeGender
        "managingOrganization": ref("Organization", pk(record.facility)),
    }
    if case.birth_year is not None:
        resource["birthDate"] = f"{case.birth_year:04d}"
    if case.age_years is not None:
        resource["extension"] = [
            {
                "url": AGE_EXTENSION,
                "valueAge": {
                    "value": case.age_years,
                    "unit": "years",
                    "system": codes.UCUM,
                    "code": "a",
                },
            }
        ]
    return resource


def practitioner(record: ConsultRecord, user: User) -> Resource:
    resource: Resource = {
        "resourceType": "Practitioner",
        "id": str(pk(user)),
        "identifier": [identifier(codes.USER_ID, pk(user))],
        "active": user.is_active,
        "name": [{"text": user.full_name}],
    }
    profile = record.profiles.get(pk(user))
    if profile is not None:
        resource["qualification"] = [
            {
                "identifier": [
                    identifier(
                        f"{codes.REGISTRATION_BODY}/{profile.registration_body}",
                        profile.registration_number,
                    )
                ],
                "code": concept(codes.REGISTRATION_BODY, str(profile.registration_body)),
                "period": {"end": profile.registration_expires_on.isoformat()},
            }
        ]
    return resource


def practitioner_role(record: ConsultRecord, user: User) -> Resource:
    """One role per user: a clinician at the consult's facility, a specialist with the
    specialties they practise, a coordinator of the Directorate."""
    role_code = (
        concept(codes.PRACTITIONER_ROLE, "doctor", "Doctor")
        if user.role in (Role.clinician, Role.specialist)
        else text_concept(str(user.role).title())
    )
    at_facility = user.facility_id is not None and user.facility_id == pk(record.facility)
    return compact(
        {
            "resourceType": "PractitionerRole",
            "id": str(pk(user)),
            "active": user.is_active,
            "practitioner": ref("Practitioner", pk(user), user.full_name),
            "organization": ref("Organization", pk(record.facility)) if at_facility else None,
            "code": [role_code],
            "specialty": [
                concept(codes.SPECIALTY, s.code, s.name) for s in record.practises.get(pk(user), [])
            ],
        }
    )


def organization(record: ConsultRecord) -> Resource:
    facility = record.facility
    return {
        "resourceType": "Organization",
        "id": str(pk(facility)),
        "identifier": [identifier(codes.FACILITY_CODE, facility.code)],
        "active": True,
        "type": [text_concept(facility.kind)],
        "name": facility.name,
        "address": [{"district": record.district.name, "country": "LS"}],
    }


def parties(record: ConsultRecord) -> list[Resource]:
    people = [record.users[i] for i in record.people_ids() if i in record.users]
    return (
        [patient(record), organization(record)]
        + [practitioner(record, u) for u in people]
        + [practitioner_role(record, u) for u in people]
    )
