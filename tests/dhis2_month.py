"""A month of real consults for the DHIS2 tests, what its numbers are by hand, and the
example mapping file with edits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from telemed.accounts.models import Role
from telemed.consults.models import Consult
from telemed.interop.dhis2.mapping import Mapping
from telemed.interop.dhis2.models import Dhis2Push
from telemed.offers.models import ConsultOffer
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, ManualClock, Users, consult_payload

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "dhis2" / "mapping.example.toml"


@dataclass(frozen=True)
class Month:
    accepted: int  # consult ids
    cancelled: int
    emergency: int


def make_month(
    first: date, db: Session, settings: Settings, users: Users, login: LoginFn, clock: ManualClock
) -> Month:
    """Three consults requested on the 10th of the month of ``first`` (Maseru): at Motebang
    one urgent, accepted 20 minutes later, and one routine, cancelled; at Queen 'Mamohato
    one emergency."""
    specialist = Specialists(db, settings, users).make(specialty="paediatrics")
    clock.set(datetime.combine(first.replace(day=10), time(8), UTC))
    motebang = login(users.make(Role.clinician, facility="MOTEBANG"))
    qmmh = login(users.make(Role.clinician, facility="QMMH"))

    def request(nurse: ApiClient, ref: str, urgency: str) -> int:
        case = {"patient_ref": ref, "age_years": 3, "sex": "female"}
        payload = consult_payload(mode="asynchronous", urgency=urgency, case=case)
        response = nurse.post("/api/v1/consults", payload)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    accepted = request(motebang, "MOT-1", "urgent")
    cancelled = request(motebang, "MOT-2", "routine")
    emergency = request(qmmh, "QM-1", "emergency")
    db.rollback()
    [offer] = db.exec(select(ConsultOffer).where(ConsultOffer.consult_id == accepted)).all()
    clock.advance(timedelta(minutes=20))  # within the urgent offer's 30 minutes
    assert login(specialist).post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    gone = motebang.post(f"/api/v1/consults/{cancelled}/cancel", {"reason": "went home"})
    assert gone.status_code == 200, gone.text
    db.rollback()
    assert {c.id for c in db.exec(select(Consult))} == {accepted, cancelled, emergency}
    return Month(accepted, cancelled, emergency)


def value_of(
    mapping: Mapping,
    values: list[dict[str, str]],
    indicator: str,
    facility: str,
    category: str | None = None,
) -> str | None:
    target = mapping.target(indicator, category)
    found = [
        v["value"]
        for v in values
        if v["dataElement"] == target.data_element
        and v["categoryOptionCombo"] == target.category_option_combo
        and v["orgUnit"] == mapping.org_unit(facility)
    ]
    assert len(found) <= 1
    return found[0] if found else None


def rows(values: list[dict[str, str]]) -> list[tuple[tuple[str, str], ...]]:
    return sorted(tuple(sorted(v.items())) for v in values)


def expect_month(mapping: Mapping, values: list[dict[str, str]]) -> None:
    """The numbers of ``make_month``, by hand."""
    assert value_of(mapping, values, "requests", "MOTEBANG", "urgent") == "1"
    assert value_of(mapping, values, "requests", "MOTEBANG", "routine") == "1"
    assert value_of(mapping, values, "requests", "QMMH", "emergency") == "1"
    assert value_of(mapping, values, "requests", "QMMH", "urgent") is None  # zeros left out
    assert value_of(mapping, values, "offers_accepted", "MOTEBANG") == "1"
    assert value_of(mapping, values, "wait_acceptance_seconds_sum", "MOTEBANG") == "1200"
    assert value_of(mapping, values, "wait_acceptance_count", "MOTEBANG") == "1"
    assert value_of(mapping, values, "cancelled", "MOTEBANG") == "1"
    assert value_of(mapping, values, "cancelled", "QMMH") is None


def edited(old: str, new: str) -> str:
    text = EXAMPLE.read_text()
    assert old in text
    return text.replace(old, new, 1)


def line_of_text(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def mapping_file(tmp_path: Path, old: str = "", new: str = "") -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(edited(old, new) if old else EXAMPLE.read_text())
    return path


def pushes(db: Session) -> list[Dhis2Push]:
    db.rollback()
    return list(db.exec(select(Dhis2Push).order_by(col(Dhis2Push.id))))
