"""The uptake pages: access, filters, bad input, links to audited consult lists, CSV."""

from __future__ import annotations

import csv
import io

from sqlmodel import Session, select

from telemed.accounts.models import Role
from telemed.audit.models import AuditEntry
from tests.conftest import LoginFn
from tests.helpers import ManualClock, Users
from tests.uptake_fixture import NOW, build

RANGE = "from=2026-10&to=2026-11"


def test_only_coordinators(db: Session, users: Users, login: LoginFn, clock: ManualClock) -> None:
    clock.set(NOW)
    for role in (Role.clinician, Role.specialist, Role.admin):
        api = login(users.make(role))
        assert api.get("/coordinator/uptake").status_code == 403
        assert api.get("/coordinator/uptake/consults?indicator=requests").status_code == 403
        assert api.get("/coordinator/uptake?format=csv&table=volume").status_code == 403
    db.expire_all()
    refused = db.exec(
        select(AuditEntry).where(
            AuditEntry.object_type == "uptake_consults", AuditEntry.action == "denied"
        )
    ).all()
    assert len(refused) == 3  # a refused look at consults is evidence too


def test_dashboard_links_and_audited_list(
    db: Session, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    clock.set(NOW)
    build(db, users)
    api = login(users.make(Role.coordinator))
    page = api.get(f"/coordinator/uptake?{RANGE}&district=MS")
    assert page.status_code == 200
    assert "<svg" in page.text
    assert "<title" in page.text
    link = "/coordinator/uptake/consults?period=month&amp;from=2026-10&amp;to=2026-11&amp;district=MS&amp;indicator=requests&amp;bucket=2026-11-01"
    assert link in page.text
    listed = api.get(link.replace("&amp;", "&"))
    assert listed.status_code == 200
    ids = [c.id for c in build_ids(db)]
    assert f'href="/consults/{ids[3]}"' in listed.text  # consult 4: QMMH, November
    assert f'href="/consults/{ids[0]}"' not in listed.text  # October's
    db.expire_all()
    rows = db.exec(select(AuditEntry).where(AuditEntry.object_type == "uptake_consults")).all()
    assert rows
    assert rows[-1].detail.endswith(f"consults {ids[3]}")


def build_ids(db: Session) -> list:
    from telemed.consults.models import Consult

    return list(db.exec(select(Consult).order_by(Consult.id)))


def test_bad_input_names_the_field(
    db: Session, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    clock.set(NOW)
    api = login(users.make(Role.coordinator))
    for query, field in (
        ("to=2027-02", "to"),
        ("facility=NOPE", "facility"),
        ("from=13-2026", "from"),
    ):
        response = api.get(f"/coordinator/uptake?{query}")
        assert response.status_code == 422
        assert field in response.text
    assert api.get("/coordinator/uptake/consults?indicator=nothing").status_code == 422


def test_csv_round_trip(db: Session, users: Users, login: LoginFn, clock: ManualClock) -> None:
    clock.set(NOW)
    build(db, users)
    api = login(users.make(Role.coordinator))
    table = api.get(f"/coordinator/uptake?{RANGE}&format=csv&table=volume")
    assert table.status_code == 200
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["Period", "Requests"]
    assert rows[1][:2] == ["Oct 2026", "2"]
    assert rows[2][:2] == ["Nov 2026", "2"]
    consults = api.get(f"/coordinator/uptake/consults?{RANGE}&indicator=requests&format=csv")
    rows = list(csv.reader(io.StringIO(consults.content.decode("utf-8-sig"))))
    assert rows[0][0] == "consult"
    assert len(rows) == 5  # header and consults 1-4
    assert {r[1] for r in rows[1:]} == {"QMMH", "MAFETENG", "BEREA"}


def test_a_chart_speaks_its_readers_language() -> None:
    """The chart's title (what a screen reader says) and its legend are in the reader's
    language; the indicator names come from the catalogue, not from the code as written."""
    from telemed.i18n import use_language
    from telemed.uptake import charts
    from telemed.uptake.service import ChartData, Series

    chart = ChartData(
        "wait_chart", "Time to acceptance (hours)", "hours", "lines", ["Nov"],
        [Series("Median", [1.0]), Series("90th percentile", [2.0])],
    )  # fmt: skip
    with use_language("en"):
        english = str(charts.render(chart))
    with use_language("st"):
        sesotho = str(charts.render(chart))
    assert "Time to acceptance (hours), by period</title>" in english
    assert "Nako ho fihlela e amoheloa (lihora), ka nako</title>" in sesotho
    assert ">Peresente ea bo-90</text>" in sesotho
    assert "90th percentile" not in sesotho
