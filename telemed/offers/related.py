"""Related specialties: whom a coordinator may turn to when an emergency's own specialty
has nobody (issue 15: a postpartum haemorrhage with no obstetrician verified showed the
coordinator "No verified specialist of this specialty" and nothing to do).

A small explicit mapping, not a taxonomy: each entry lists, most fitting first, the
specialties whose doctors commonly manage that specialty's emergencies until a
specialist is found (e.g. a general surgeon or an internist for an obstetric
haemorrhage, an internist or a family doctor for a diabetic emergency). The coordinator
decides; the page only suggests. A specialty without an entry gets emergency medicine,
internal medicine and family medicine, who see every kind of emergency.
"""

from __future__ import annotations

GENERALISTS = ("emergency_medicine", "internal_medicine", "family_medicine")

RELATED: dict[str, tuple[str, ...]] = {
    "obstetrics_gynaecology": ("general_surgery", "internal_medicine", "family_medicine"),
    "paediatrics": ("family_medicine", "internal_medicine", "emergency_medicine"),
    "cardiology": ("internal_medicine", "emergency_medicine", "anaesthesiology"),
    "pulmonology": ("internal_medicine", "infectious_diseases", "emergency_medicine"),
    "infectious_diseases": ("internal_medicine", "pulmonology", "family_medicine"),
    "neurology": ("internal_medicine", "emergency_medicine", "psychiatry"),
    "nephrology": ("internal_medicine", "urology", "family_medicine"),
    "endocrinology": ("internal_medicine", "family_medicine", "emergency_medicine"),
    "gastroenterology": ("internal_medicine", "general_surgery", "family_medicine"),
    "haematology": ("internal_medicine", "oncology", "family_medicine"),
    "oncology": ("internal_medicine", "haematology", "family_medicine"),
    "general_surgery": ("emergency_medicine", "orthopaedics", "anaesthesiology"),
    "orthopaedics": ("general_surgery", "emergency_medicine", "family_medicine"),
    "urology": ("general_surgery", "nephrology", "family_medicine"),
    "ophthalmology": ("emergency_medicine", "neurology", "family_medicine"),
    "ent": ("general_surgery", "emergency_medicine", "family_medicine"),
    "psychiatry": ("family_medicine", "internal_medicine", "neurology"),
    "dermatology": ("family_medicine", "internal_medicine", "infectious_diseases"),
    "anaesthesiology": ("emergency_medicine", "general_surgery", "internal_medicine"),
    "emergency_medicine": ("internal_medicine", "family_medicine", "general_surgery"),
    "internal_medicine": ("family_medicine", "emergency_medicine", "cardiology"),
    "family_medicine": ("internal_medicine", "emergency_medicine", "paediatrics"),
    "radiology": ("emergency_medicine", "internal_medicine", "general_surgery"),
}


def related_to(specialty: str) -> tuple[str, ...]:
    """The specialties to suggest for ``specialty``, never itself."""
    return tuple(s for s in RELATED.get(specialty, GENERALISTS) if s != specialty)
