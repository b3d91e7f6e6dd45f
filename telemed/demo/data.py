"""Demo data for the embedded default: Lesotho's districts, some facilities, one user of
every role (with passwords printed at start) and consults in various states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from telemed.accounts.models import Role

DISTRICTS: list[tuple[str, str]] = [
    ("BB", "Butha-Buthe"),
    ("BE", "Berea"),
    ("LE", "Leribe"),
    ("MF", "Mafeteng"),
    ("MH", "Mohale's Hoek"),
    ("MK", "Mokhotlong"),
    ("MS", "Maseru"),
    ("QN", "Qacha's Nek"),
    ("QT", "Quthing"),
    ("TT", "Thaba-Tseka"),
]

# (code, name, kind, district code)
FACILITIES: list[tuple[str, str, str, str]] = [
    ("QMMH", "Queen 'Mamohato Memorial Hospital", "referral hospital", "MS"),
    ("SCOTT", "Scott Hospital, Morija", "hospital", "MS"),
    ("ROMA", "St Joseph's Hospital, Roma", "hospital", "MS"),
    ("MOTEBANG", "Motebang Hospital", "district hospital", "LE"),
    ("BEREA", "Berea Hospital", "district hospital", "BE"),
    ("MALUTI", "Maluti Adventist Hospital", "hospital", "BE"),
    ("BBH", "Butha-Buthe Hospital", "district hospital", "BB"),
    ("SEBOCHE", "Seboche Hospital", "hospital", "BB"),
    ("MAFETENG", "Mafeteng Hospital", "district hospital", "MF"),
    ("MHOEK", "Mohale's Hoek Hospital", "district hospital", "MH"),
    ("MOKHOTLONG", "Mokhotlong Hospital", "district hospital", "MK"),
    ("MACHABENG", "Machabeng Hospital", "district hospital", "QN"),
    ("QUTHING", "Quthing Hospital", "district hospital", "QT"),
    ("PARAY", "Paray Hospital", "hospital", "TT"),
    ("SEMONKONG", "Semonkong Health Centre", "health centre", "MS"),
]


@dataclass(frozen=True)
class DemoProfile:
    """A specialist's directory entry: registered, and verified by the demo coordinator
    unless ``verified`` is False (so the verification queue has someone in it)."""

    specialties: tuple[str, ...]
    languages: tuple[str, ...]
    country: str
    registration_body: str
    registration_number: str
    verified: bool = True


@dataclass(frozen=True)
class DemoUser:
    email: str
    full_name: str
    role: Role
    password: str
    facility_code: str | None = None
    timezone: str | None = None
    profile: DemoProfile | None = None


DEMO_USERS: list[DemoUser] = [
    DemoUser(
        "clinician@demo.telemed.org.ls",
        "Palesa Mokoena (nurse clinician)",
        Role.clinician,
        "clinician-demo-2026",
        "MOTEBANG",
    ),
    DemoUser(
        "doctor@demo.telemed.org.ls",
        "Thabo Letsie (medical officer)",
        Role.clinician,
        "doctor-demo-2026",
        "MOKHOTLONG",
    ),
    DemoUser(
        "specialist@demo.telemed.org.ls",
        "Dr 'Mathabo Nthane (paediatrics)",
        Role.specialist,
        "specialist-demo-2026",
        timezone="Africa/Johannesburg",
        profile=DemoProfile(("paediatrics",), ("st", "en"), "ZA", "HPCSA", "MP0612345"),
    ),
    DemoUser(
        "specialist.london@demo.telemed.org.ls",
        "Dr Lerato Phiri (internal medicine)",
        Role.specialist,
        "london-demo-2026",
        timezone="Europe/London",
        profile=DemoProfile(
            ("internal_medicine", "infectious_diseases"), ("st", "en"), "GB", "GMC", "7123456"
        ),
    ),
    DemoUser(
        "specialist.toronto@demo.telemed.org.ls",
        "Dr Teboho Mofokeng (obstetrics)",
        Role.specialist,
        "toronto-demo-2026",
        timezone="America/Toronto",
        profile=DemoProfile(
            ("obstetrics_gynaecology",), ("st", "en"), "CA", "other", "CPSO-98765", verified=False
        ),
    ),
    DemoUser(
        "coordinator@demo.telemed.org.ls",
        "Lineo Mphutlane (Diaspora Directorate)",
        Role.coordinator,
        "coordinator-demo-2026",
    ),
    DemoUser("admin@demo.telemed.org.ls", "System administrator", Role.admin, "admin-demo-2026"),
]

# On-call blocks (specialty, weekday 0 = Monday, start, end; 00:00 as the end is midnight),
# in the specialist's own zone, so the coordinator's rota page shows cover and gaps: the
# paediatrician covers weeknights, the London internist weekend days.
DEMO_ONCALL: dict[str, tuple[tuple[str, int, time, time], ...]] = {
    "specialist@demo.telemed.org.ls": tuple(
        block
        for day in range(5)
        for block in (
            ("paediatrics", day, time(21), time(0)),
            ("paediatrics", (day + 1) % 7, time(0), time(7)),
        )
    ),
    "specialist.london@demo.telemed.org.ls": tuple(
        ("internal_medicine", day, time(8), time(20)) for day in (5, 6)
    ),
}

# The demo's video consult (consult 1) is booked from the minute of seeding, so that its call
# is open at once (calls open around their appointment) and both sides see it. Nobody in the
# room 15 minutes after that makes it a no-show (the call stays possible, as for a consult
# without an appointment).
DEMO_APPOINTMENT_MINUTES = 30
