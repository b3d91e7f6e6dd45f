"""Seeding the demo data through the same services the product uses.

Like every service, these only flush: the caller (the command line, a test) owns the unit of
work and commits it."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlmodel import Session, select

from telemed.accounts import service as accounts
from telemed.accounts.models import User
from telemed.appointments import service as appointments
from telemed.cases.models import Sex
from telemed.cases.schemas import CaseIn
from telemed.consent import service as consent
from telemed.consent.models import Consenter, ConsentMethod, ConsentScope
from telemed.consent.schemas import ConsentIn
from telemed.consults import reasons
from telemed.consults import service as consults
from telemed.consults.models import (
    Consult,
    ConsultMode,
    ConsultState,
    Language,
    ParticipantRelation,
    Urgency,
)
from telemed.consults.schemas import ConsultCreate, Vitals
from telemed.db import pk, utcnow
from telemed.demo.data import (
    DEMO_APPOINTMENT_MINUTES,
    DEMO_ONCALL,
    DEMO_USERS,
    DISTRICTS,
    FACILITIES,
    DemoUser,
)
from telemed.demo.history import seed_history
from telemed.directory import service as directory
from telemed.directory.models import RegistrationBody
from telemed.directory.schemas import AvailabilityIn, RegistrationIn, WindowIn
from telemed.facilities.models import District, Facility
from telemed.messages import service as messages
from telemed.oncall import service as oncall
from telemed.oncall.schemas import BlockIn
from telemed.settings import Settings


def seed_facilities(session: Session) -> None:
    """Lesotho's districts and demo facilities (idempotent)."""
    if session.exec(select(District)).first() is not None:
        return
    districts = {code: District(code=code, name=name) for code, name in DISTRICTS}
    session.add_all(districts.values())
    session.flush()
    for code, name, kind, district in FACILITIES:
        session.add(Facility(code=code, name=name, kind=kind, district_id=pk(districts[district])))
    session.flush()


def seed_demo(session: Session, settings: Settings, *, history: bool = True) -> bool:
    """Seed an empty database; returns False (and changes nothing) if it has users.

    ``history=False`` leaves out the six months of past consults: a test about one demo
    consult's record does not want to read 850 others."""
    if session.exec(select(User)).first() is not None:
        return False
    seed_facilities(session)
    users = {
        u.email: accounts.create_user(
            session,
            settings,
            email=u.email,
            full_name=u.full_name,
            role=u.role,
            password=u.password,
            facility_code=u.facility_code,
            timezone=u.timezone,
        )
        for u in DEMO_USERS
        if u.profile is None
    }
    coordinator = users["coordinator@demo.telemed.org.ls"]
    for demo in DEMO_USERS:
        if demo.profile is not None:
            users[demo.email] = _register_specialist(session, settings, demo, coordinator)
    nurse = users["clinician@demo.telemed.org.ls"]
    doctor = users["doctor@demo.telemed.org.ls"]
    paediatrician = users["specialist@demo.telemed.org.ls"]
    _seed_consults(session, settings, nurse, doctor, paediatrician)
    # After the demo consults, so that none of them depends on the hour of seeding.
    now = utcnow()
    for email, blocks in DEMO_ONCALL.items():  # through the rota's own checks
        for specialty, weekday, start, end in blocks:
            block = BlockIn(specialty=specialty, weekday=weekday, start=start, end=end)
            oncall.declare(session, users[email], block, now)
    # Six months of past consults for the coordinator's uptake dashboard.
    if history:
        london = users["specialist.london@demo.telemed.org.ls"]
        seed_history(session, nurse, [paediatrician, london], utcnow())
    return True


def _register_specialist(
    session: Session, settings: Settings, demo: DemoUser, coordinator: User
) -> User:
    """Through the directory's own registration, verification and availability services:
    every day 07:00-21:00 in the specialist's zone, so demo requests find a slot."""
    assert demo.profile is not None
    profile = demo.profile
    now = utcnow()  # the demo is seeded by a command, on the machine's clock
    directory.register(
        session,
        settings,
        RegistrationIn(
            email=demo.email,
            full_name=demo.full_name,
            password=demo.password,
            specialties=list(profile.specialties),
            languages=[Language(code) for code in profile.languages],
            country=profile.country,
            time_zone=demo.timezone or settings.default_timezone,
            registration_body=RegistrationBody(profile.registration_body),
            registration_number=profile.registration_number,
            registration_expires_on=now.date() + timedelta(days=700),
            bio="Demo volunteer.",
        ),
        address="demo",
        now=now,
    )
    user = session.exec(select(User).where(User.email == demo.email)).one()
    if profile.verified:
        directory.verify(session, coordinator, pk(user), "Demo: register entry checked online", now)
        directory.set_availability(
            session,
            settings,
            user,
            AvailabilityIn(
                weekly=[WindowIn(weekday=d, start=time(7), end=time(21)) for d in range(7)],
                weekly_cap=10,
            ),
            now,
        )
    return user


def _consent(
    session: Session,
    nurse: User,
    consult: Consult,
    now: datetime,
    scopes: tuple[ConsentScope, ...] = (ConsentScope.sharing, ConsentScope.call),
    **fields: object,
) -> None:
    """The consent the clinician took at the bedside (to sharing, and to a call)."""
    for scope in scopes:
        consent.record(
            session, nurse, consult, ConsentIn.model_validate({"scope": scope, **fields}), now
        )


def _seed_consults(
    session: Session, settings: Settings, nurse: User, doctor: User, paediatrician: User
) -> None:
    now = utcnow()  # the demo is seeded by a command, on the machine's clock
    fever = consults.create_consult(
        session,
        nurse,
        ConsultCreate(
            case=CaseIn(patient_ref="MOT-2026-0141", age_years=2, sex=Sex.female),
            specialty="paediatrics",
            urgency=Urgency.urgent,
            mode=ConsultMode.video,
            language=Language.sesotho,
            question="Two-year-old with fever for 5 days and a new rash; Kawasaki disease?",
            history="Fever 39-40 °C for 5 days despite paracetamol. Red eyes, cracked lips.",
            examination="Irritable, bilateral conjunctival injection, strawberry tongue.",
            current_treatment="Paracetamol 15 mg/kg 6-hourly.",
            vitals=Vitals(
                pulse_bpm=150,
                respiratory_rate=32,
                temperature_c=39.4,
                spo2_percent=97,
                weight_kg=11.5,
            ),
        ),
        now,
    )
    _consent(
        session,
        nurse,
        fever,
        now,
        consenter=Consenter.guardian,
        guardian_name="'Mamosa Mokoena",
        guardian_relationship="mother",
        method=ConsentMethod.verbal,
    )
    # The offer and acceptance that scheduling will make, done by hand for the demo.
    consults.add_participant(session, fever, paediatrician, ParticipantRelation.offered)
    consults.transition(
        session,
        fever,
        ConsultState.offered,
        actor=None,
        reason=reasons.english(reasons.OFFERED_TO, names=paediatrician.full_name),
        at=now,
    )
    consults.add_participant(session, fever, paediatrician, ParticipantRelation.assigned)
    consults.transition(
        session,
        fever,
        ConsultState.accepted,
        actor=paediatrician,
        reason=reasons.english(reasons.ACCEPTED_BY, name=paediatrician.full_name),
        at=now,
    )
    start = now.replace(second=0, microsecond=0)  # the call is open straight away
    appointments.book(
        session,
        fever,
        pk(paediatrician),
        start,
        start + timedelta(minutes=DEMO_APPOINTMENT_MINUTES),
        actor=paediatrician,
        now=now,
        settings=settings,
    )
    messages.post(session, nurse, fever, "Photos of the rash will follow when the network allows.")
    messages.post(
        session,
        paediatrician,
        fever,
        "Thank you. Please check the hands and feet for swelling and peeling.",
    )

    hypertension = consults.create_consult(
        session,
        nurse,
        ConsultCreate(
            case=CaseIn(patient_ref="MOT-2026-0207", age_years=54, sex=Sex.male),
            specialty="internal_medicine",
            urgency=Urgency.routine,
            mode=ConsultMode.asynchronous,
            language=Language.english,
            question="Poorly controlled hypertension on three agents; next step?",
            vitals=Vitals(bp_systolic=178, bp_diastolic=104, pulse_bpm=82, weight_kg=96),
            current_treatment="Amlodipine 10 mg, hydrochlorothiazide 25 mg, enalapril 20 mg.",
        ),
        now,
    )
    _consent(
        session,
        nurse,
        hypertension,
        now,
        (ConsentScope.sharing,),  # answered by messages: no call
        method=ConsentMethod.witnessed,
        witness_name="Sister Palesa Thabane",
    )
    consults.create_consult(
        session,
        nurse,
        ConsultCreate(
            case=CaseIn(patient_ref="MOT-2026-0219", birth_year=1997, sex=Sex.female),
            specialty="obstetrics_gynaecology",
            urgency=Urgency.routine,
            mode=ConsultMode.audio,
            language=Language.sesotho,
            question="Draft: 28 weeks, fundal height small for dates.",
            submit=False,
        ),
        now,
    )
    cancelled = consults.create_consult(
        session,
        nurse,
        ConsultCreate(
            case=CaseIn(patient_ref="MOT-2026-0188", age_years=7, sex=Sex.male),
            specialty="orthopaedics",
            urgency=Urgency.urgent,
            mode=ConsultMode.video,
            language=Language.sesotho,
            question="Supracondylar fracture, is closed reduction here safe?",
        ),
        now,
    )
    consults.cancel(
        session, nurse, cancelled, "Transferred to Queen 'Mamohato Memorial Hospital", now
    )
    haemorrhage = consults.create_consult(
        session,
        doctor,
        ConsultCreate(
            case=CaseIn(patient_ref="MKH-0032", age_years=31, sex=Sex.female),
            specialty="emergency_medicine",
            urgency=Urgency.emergency,
            mode=ConsultMode.audio,
            language=Language.english,
            question="Postpartum haemorrhage not responding to oxytocin; transfer takes 6 hours.",
            vitals=Vitals(bp_systolic=82, bp_diastolic=50, pulse_bpm=128, spo2_percent=95),
        ),
        now,
    )
    _consent(session, doctor, haemorrhage, now, method=ConsentMethod.verbal)
