"""Specialists made through the real directory services (registration, availability,
verification), and what they were offered, for the directory and offers tests."""

from __future__ import annotations

from datetime import time, timedelta

from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User
from telemed.db import utcnow
from telemed.directory import service as directory
from telemed.directory.schemas import AvailabilityIn, RegistrationIn, WindowIn
from telemed.offers.models import ConsultOffer
from telemed.settings import Settings
from tests.helpers import PASSWORD, Users

ALL_DAY = [WindowIn(weekday=d, start=time(0), end=time(0)) for d in range(7)]


class Specialists:
    def __init__(self, db: Session, settings: Settings, users: Users) -> None:
        self.db = db
        self.settings = settings
        self.count = 0
        self.coordinator = users.make(Role.coordinator)

    def make(
        self,
        *,
        specialty: str = "paediatrics",
        languages: tuple[str, ...] = ("st", "en"),
        time_zone: str = "Africa/Johannesburg",
        verified: bool = True,
        away: bool = False,
        windows: list[WindowIn] | None = None,
    ) -> User:
        self.db.rollback()  # a fresh transaction: the test may hold a stale read
        self.count += 1
        data = RegistrationIn.model_validate(
            {
                "email": f"volunteer{self.count}@example.org",
                "full_name": f"Dr Volunteer {self.count}",
                "password": PASSWORD,
                "specialties": [specialty],
                "languages": list(languages),
                "country": "ZA",
                "time_zone": time_zone,
                "registration_body": "HPCSA",
                "registration_number": f"MP0{self.count:05d}",
                "registration_expires_on": utcnow().date() + timedelta(days=365),
            }
        )
        now = utcnow()
        profile = directory.register(self.db, self.settings, data, f"192.0.2.{self.count}", now)
        user = self.db.get(User, profile.user_id)
        assert user is not None
        directory.set_availability(
            self.db,
            self.settings,
            user,
            AvailabilityIn(weekly=ALL_DAY if windows is None else windows, away=away),
            now,
        )
        if verified:
            directory.verify(
                self.db, self.coordinator, profile.user_id, "HPCSA register, online", now
            )
        self.db.commit()  # the test's session owns this unit of work
        return user


def offers_of(db: Session, consult_id: int) -> list[ConsultOffer]:
    """The consult's offers as the database has them now, in the order they were made."""
    db.rollback()
    return list(
        db.exec(
            select(ConsultOffer)
            .where(ConsultOffer.consult_id == consult_id)
            .order_by(col(ConsultOffer.id))
            .execution_options(populate_existing=True)  # not the objects read before
        )
    )
