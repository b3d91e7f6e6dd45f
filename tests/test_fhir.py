"""FHIR R4 export: one consult's Bundle ($everything) and the bulk NDJSON export.

Every resource produced is parsed back with the fhir.resources R4B models, and every
reference must resolve inside the Bundle (or, in the bulk export, inside the export)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from telemed.accounts.models import Role
from telemed.audit.models import AuditAction, AuditEntry
from telemed.consults import service as consults
from telemed.consults.models import Consult
from telemed.consults.schemas import ConsultCreate
from telemed.db import pk
from telemed.interop.fhir import auth as fhir_auth
from telemed.interop.fhir import bulk, codes
from telemed.messages import service as messages
from telemed.messages.models import Message
from telemed.settings import Settings
from telemed.uow import Units
from tests.cli_helpers import Ran, run_telemed
from tests.conftest import LoginFn
from tests.fhir_helpers import (
    EVERY_TYPE,
    Demo,
    check_bundle,
    references,
    seed_full_consult,
    validate,
)
from tests.helpers import Users, consult_payload

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def demo(db: Session, settings: Settings, engine: Engine) -> Demo:
    return seed_full_consult(db, settings, engine)


def everything_url(consult_id: int | str) -> str:
    return f"/fhir/ServiceRequest/{consult_id}/$everything"


def audit_rows(db: Session, consult_id: int, action: AuditAction) -> list[AuditEntry]:
    db.rollback()  # a fresh snapshot: the application committed on its own connection
    return list(
        db.exec(
            select(AuditEntry)
            .where(AuditEntry.consult_id == consult_id, AuditEntry.action == action)
            .order_by(col(AuditEntry.id))
        )
    )


def by_type(resources: dict[str, dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources.values() if r["resourceType"] == resource_type]


def test_everything_is_a_valid_bundle_of_the_whole_consult(login: LoginFn, demo: Demo) -> None:
    response = login(demo.nurse).get(everything_url(demo.consult_id))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["type"] == "searchset"
    resources = check_bundle(body)
    assert {r["resourceType"] for r in resources.values()} == EVERY_TYPE
    assert body["entry"][0]["search"]["mode"] == "match"
    assert body["entry"][0]["resource"]["resourceType"] == "ServiceRequest"

    request = resources[f"ServiceRequest/{demo.consult_id}"]
    assert request["priority"] == "urgent"
    assert request["code"]["coding"][0] == {
        "system": codes.SPECIALTY,
        "code": "paediatrics",
        "display": "Paediatrics and neonatology",
    }
    # The amended note's diagnoses are the consult's conditions, coded in ICD-10.
    conditions = by_type(resources, "Condition")
    assert [c["code"]["coding"][0]["code"] for c in conditions] == ["M30.3"]
    assert conditions[0]["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10"
    # Vitals are LOINC-coded Observations with UCUM units.
    vitals = {o["code"]["coding"][0]["code"]: o for o in by_type(resources, "Observation")}
    assert set(vitals) == {"8867-4", "9279-1", "8310-5", "59408-5", "29463-7"}
    assert vitals["8867-4"]["valueQuantity"]["value"] == 150
    assert vitals["8310-5"]["valueQuantity"]["code"] == "Cel"
    # Both versions of the note; the amendment replaces the first.
    notes = sorted(
        (d for d in by_type(resources, "DocumentReference") if d["id"].startswith("note-")),
        key=lambda d: d["id"],
    )
    assert [n["status"] for n in notes] == ["superseded", "current"]
    assert notes[1]["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{notes[0]['id']}"
    text = base64.b64decode(notes[1]["content"][0]["attachment"]["data"]).decode()
    assert "red eyes <and> cracked lips" in text
    # The photo posted with a message is Media the message points at; the PDF a document.
    (media,) = by_type(resources, "Media")
    assert media["content"]["contentType"] == "image/jpeg"
    shared = [
        p["contentReference"]["reference"]
        for c in by_type(resources, "Communication")
        for p in c["payload"]
        if "contentReference" in p
    ]
    assert shared == [f"Media/{media['id']}"]
    assert any(
        d["content"][0]["attachment"]["contentType"] == "application/pdf"
        for d in by_type(resources, "DocumentReference")
    )
    # The patient is pseudonymous: the facility's reference, no name.
    (patient,) = by_type(resources, "Patient")
    assert patient["identifier"][0]["value"] == "MOT-2026-0141"
    assert "name" not in patient
    assert patient["meta"]["security"][0]["code"] == "PSEUDED"
    # The mother's bedside consent to sharing and to a call: two active permits, she a
    # RelatedPerson of the Bundle.
    consents = {c["scope"]["coding"][0]["code"]: c for c in by_type(resources, "Consent")}
    assert set(consents) == {"patient-privacy", "treatment"}
    for given in consents.values():
        assert given["status"] == "active"
        assert given["provision"]["type"] == "permit"
        (who,) = given["performer"]
        assert resources[who["reference"]]["resourceType"] == "RelatedPerson"
    task = resources[f"Task/{demo.consult_id}"]
    assert task["output"][0]["valueCodeableConcept"]["coding"][0]["code"] == "referral_avoided"
    (appointment,) = by_type(resources, "Appointment")
    assert appointment["status"] == "booked"


def test_a_withdrawal_is_an_active_deny_and_the_consent_it_ends_inactive(
    login: LoginFn, demo: Demo
) -> None:
    nurse = login(demo.nurse)
    withdrawn = nurse.post(
        f"/api/v1/consults/{demo.consult_id}/consents/withdraw",
        {"scope": "call", "consenter": "patient", "reason": "Prefers <messages> only."},
    )
    assert withdrawn.status_code == 201, withdrawn.text

    resources = check_bundle(nurse.get(everything_url(demo.consult_id)).json())

    calls = sorted(
        (
            c
            for c in by_type(resources, "Consent")
            if c["scope"]["coding"][0]["code"] == "treatment"
        ),
        key=lambda c: int(c["id"].removeprefix("consent-")),
    )
    assert [(c["status"], c["provision"]["type"]) for c in calls] == [
        ("inactive", "permit"),
        ("active", "deny"),
    ]
    assert "&lt;messages&gt;" in calls[1]["text"]["div"]  # the clinician's text, escaped
    (sharing,) = (
        c
        for c in by_type(resources, "Consent")
        if c["scope"]["coding"][0]["code"] == "patient-privacy"
    )
    assert sharing["status"] == "active"


def test_a_consult_without_consent_exports_a_proposed_consent_that_says_so(
    login: LoginFn, users: Users
) -> None:
    nurse = login(users.make(Role.clinician))
    created = nurse.post("/api/v1/consults", consult_payload(consent=None)).json()

    resources = check_bundle(nurse.get(everything_url(created["id"])).json())

    (consent,) = by_type(resources, "Consent")
    assert consent["status"] == "proposed"
    assert "No consent was recorded" in consent["text"]["div"]


def test_reading_the_record_is_audited_like_reading_the_consult(
    login: LoginFn, demo: Demo, db: Session
) -> None:
    before = len(audit_rows(db, demo.consult_id, AuditAction.read))

    assert login(demo.coordinator).get(everything_url(demo.consult_id)).status_code == 200

    reads = audit_rows(db, demo.consult_id, AuditAction.read)
    assert len(reads) == before + 1
    assert reads[-1].object_type == "consult_fhir"
    assert reads[-1].actor_id == demo.coordinator.id


def test_another_facilitys_clinician_gets_404_and_the_refusal_is_audited(
    login: LoginFn, demo: Demo, db: Session
) -> None:
    response = login(demo.doctor).get(everything_url(demo.consult_id))

    assert response.status_code == 404
    assert response.headers["content-type"].startswith(FHIR_JSON)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"
    denied = audit_rows(db, demo.consult_id, AuditAction.denied)
    assert [(d.actor_id, d.object_type) for d in denied] == [(demo.doctor.id, "consult")]
    assert not [
        r for r in audit_rows(db, demo.consult_id, AuditAction.read) if r.actor_id == demo.doctor.id
    ]


def test_unknown_and_malformed_ids_answer_with_an_operation_outcome(
    login: LoginFn, demo: Demo
) -> None:
    nurse = login(demo.nurse)
    unknown = nurse.get(everything_url(999999))
    malformed = nurse.get(everything_url("12abc"))

    assert unknown.status_code == 404
    assert unknown.json()["issue"][0]["code"] == "not-found"
    assert malformed.status_code == 400
    assert malformed.headers["content-type"].startswith(FHIR_JSON)
    assert malformed.json()["issue"][0]["code"] == "invalid"
    assert "12abc" in malformed.json()["issue"][0]["diagnostics"]


def test_without_a_login_the_answer_is_401_not_a_login_page(client: Any, demo: Demo) -> None:
    response = client.get(everything_url(demo.consult_id), follow_redirects=False)

    assert response.status_code == 401
    assert response.json()["issue"][0]["code"] == "login"


def test_the_consult_page_links_the_record_for_those_who_may_export_it(
    login: LoginFn, demo: Demo, db: Session, users: Users
) -> None:
    admin = users.make(Role.admin)
    outsider = users.make(Role.specialist)
    link = f'href="/fhir/ServiceRequest/{demo.consult_id}/$everything"'
    for who in (demo.nurse, demo.specialist, demo.coordinator):
        page = login(who).get(f"/consults/{demo.consult_id}")
        assert page.status_code == 200
        assert link in page.text, who.email
    consult = db.get(Consult, demo.consult_id)
    assert consult is not None
    assert not fhir_auth.can_export(db, demo.doctor, consult)
    assert not fhir_auth.can_export(db, admin, consult)
    assert not fhir_auth.can_export(db, outsider, consult)
    assert login(outsider).get(everything_url(demo.consult_id)).status_code == 404


# ------------------------------------------------------------------ bulk export (CLI)


def telemed(settings: Settings, *args: str) -> Ran:
    """``telemed ...`` on the test's database."""
    environ = {
        "TELEMED_DATA_DIR": str(settings.data_dir),
        "TELEMED_DATABASE_URL": str(settings.database_url),
    }
    return run_telemed(args, environ)


def read_export(out: Path) -> dict[str, dict[str, Any]]:
    """Every resource of an export, by Type/id, each parsed back with its R4B model."""
    found: dict[str, dict[str, Any]] = {}
    manifest = json.loads((out / "manifest.json").read_text())
    assert {o["url"] for o in manifest["output"]} == {p.name for p in out.glob("*.ndjson")}
    for item in manifest["output"]:
        lines = (out / item["url"]).read_text().splitlines()
        assert len(lines) == item["count"]
        for line in lines:
            resource = json.loads(line)
            assert resource["resourceType"] == item["type"]
            validate(resource)
            key = f"{resource['resourceType']}/{resource['id']}"
            assert key not in found, f"{key} written twice"
            found[key] = resource
    return found


def test_bulk_export_round_trip(
    demo: Demo, settings: Settings, db: Session, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    before = len(audit_rows(db, demo.consult_id, AuditAction.export))

    result = telemed(settings, "fhir", "export", "--since", "2020-01-01", "--out", str(out))

    assert result.returncode == 0, result.stderr
    resources = read_export(out)
    consults = db.exec(select(Consult)).all()
    assert "Exported 5 consults" in result.stdout
    assert len(consults) == 5
    assert {r["id"] for r in resources.values() if r["resourceType"] == "ServiceRequest"} == {
        str(c.id) for c in consults
    }
    assert {r["resourceType"] for r in resources.values()} == EVERY_TYPE
    for key, resource in resources.items():
        for reference in references(resource):
            assert reference in resources, f"{key} refers to {reference}, not exported"
    # Two patients of Motebang share the hospital: one Organization per facility.
    assert len([k for k in resources if k.startswith("Organization/")]) == 2
    assert len(audit_rows(db, demo.consult_id, AuditAction.export)) == before + 1
    exported = db.exec(
        select(AuditEntry.consult_id).where(AuditEntry.action == AuditAction.export)
    ).all()
    assert sorted(exported) == sorted(c.id for c in consults)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export.")]


def test_bulk_export_since_a_later_date_leaves_older_consults_out(
    demo: Demo, settings: Settings, db: Session, tmp_path: Path
) -> None:
    today = datetime.now(UTC).astimezone(ZoneInfo("Africa/Maseru")).date()
    old = db.exec(select(Consult).where(Consult.id != demo.consult_id)).first()
    assert old is not None
    long_ago = datetime(2025, 1, 1, tzinfo=UTC)
    db.execute(
        update(Consult)
        .where(col(Consult.id) == old.id)
        .values(created_at=long_ago, state_changed_at=long_ago)
    )
    db.commit()

    result = telemed(
        settings, "fhir", "export", "--since", today.isoformat(), "--out", str(tmp_path / "x")
    )

    assert result.returncode == 0, result.stderr
    requests = [k for k in read_export(tmp_path / "x") if k.startswith("ServiceRequest/")]
    assert len(requests) == 4
    assert f"ServiceRequest/{old.id}" not in requests


@pytest.mark.parametrize(
    ("since", "out", "message"),
    [
        ("2026-13-01", "new", "--since: '2026-13-01' is not a date"),
        ("yesterday", "new", "--since: 'yesterday' is not a date"),
        ("2999-01-01", "new", "--since: 2999-01-01 is in the future"),
        ("2020-01-01", "full", "already exists and is not an empty directory"),
        ("2020-01-01", "missing/new", "does not exist"),
        ("2020-01-01", "locked/new", "cannot write in"),
    ],
)
def test_bulk_export_refuses_bad_input_with_a_message_and_writes_nothing(
    settings: Settings,
    db: Session,
    users: Users,
    tmp_path: Path,
    since: str,
    out: str,
    message: str,
) -> None:
    consult = consults.create_consult(
        db,
        users.make(Role.clinician),
        ConsultCreate.model_validate(consult_payload(consent=None)),
        datetime.now(UTC),
    )
    db.commit()
    exports = tmp_path / "exports"
    (exports / "full").mkdir(parents=True)
    (exports / "full" / "keep.txt").write_text("mine")
    (exports / "locked").mkdir()
    (exports / "locked").chmod(0o500)
    # Root writes in a read-only directory; nobody writes at the top of sysfs.
    target = Path("/sys/new") if out == "locked/new" and os.geteuid() == 0 else exports / out
    before = sorted(p.name for p in exports.iterdir())

    result = telemed(settings, "fhir", "export", "--since", since, "--out", str(target))

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in exports.iterdir()) == before
    assert (exports / "full" / "keep.txt").read_text() == "mine"
    assert not audit_rows(db, pk(consult), AuditAction.export)


def export_then(engine: Engine, out: Path, then: Callable[[Path], object]) -> None:
    """The export composed as ``bulk.export`` composes it, with ``then(staging)`` run
    after the audit rows are written, before they commit and before the rename."""
    since = datetime(2020, 1, 1, tzinfo=UTC)
    with bulk.published(out) as staging:
        with Session(bulk.reading_engine(engine.url.render_as_string(False))) as session:
            report = bulk.write(session, staging, since, datetime.now(UTC), "http://x", batch=2)
        assert report.consults == 5
        assert (staging / "Patient.ndjson").exists()
        with Units(engine).one() as session:
            bulk.record_export(session, report, since)
            then(staging)


def test_a_failure_before_the_end_leaves_no_directory_and_no_audit_row(
    demo: Demo, db: Session, engine: Engine, tmp_path: Path
) -> None:
    """An error after the pages and their audit rows were written (a full disk, an
    interrupted run) removes the staging directory and rolls the audit rows back."""
    exports = tmp_path / "exports"
    exports.mkdir()

    def disk_full(_staging: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        export_then(engine, exports / "out", disk_full)

    assert list(exports.iterdir()) == []
    assert not audit_rows(db, demo.consult_id, AuditAction.export)


def test_a_directory_taken_meanwhile_is_left_alone(
    demo: Demo, engine: Engine, tmp_path: Path
) -> None:
    """The rename is the last step: if another process made the directory meanwhile, its
    files stay and ours go (the audit rows stand: the records were read)."""
    out = tmp_path / "exports" / "out"
    out.parent.mkdir()

    def taken(_staging: Path) -> None:
        out.mkdir()  # by another process, while this one commits
        (out / "theirs.txt").write_text("theirs")

    with pytest.raises(OSError, match="not empty"):
        export_then(engine, out, taken)

    assert [p.name for p in out.parent.iterdir()] == ["out"]
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]


def test_the_command_explains_itself(settings: Settings) -> None:
    result = telemed(settings, "fhir", "export", "--help")

    assert result.returncode == 0, result.stderr
    assert "--since DATE" in result.stdout
    assert "--out DIRECTORY" in result.stdout


def test_the_clinics_go_on_writing_while_the_export_reads(
    demo: Demo, db: Session, engine: Engine, tmp_path: Path
) -> None:
    """The export's read transaction takes no lock a writer waits for (SQLite's write lock
    is the one that matters): a message posted in the middle of it commits at once, and
    the export, reading its own snapshot, does not contain it."""
    since = datetime(2020, 1, 1, tzinfo=UTC)
    url = engine.url.render_as_string(hide_password=False)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with Session(bulk.reading_engine(url)) as session:
        first = bulk.write(session, tmp_path / "one", since, datetime.now(UTC), "x", batch=2)
        with Units(engine).one() as clinic:
            consult = clinic.get(Consult, demo.consult_id)
            assert consult is not None
            posted = messages.post(clinic, demo.nurse, consult, "Posted during the export.")
        second = bulk.write(session, tmp_path / "two", since, datetime.now(UTC), "x", batch=2)

    db.rollback()  # a fresh snapshot of the test's own
    assert db.get(Message, pk(posted)) is not None
    assert first.counts["Communication"] == second.counts["Communication"]
