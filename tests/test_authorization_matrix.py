"""The authorization matrix, generated from the route table (issue 13, item 11).

Every HTTP route declares who may use it: its module's ``ACCESS`` maps the endpoint
function's name to a ``telemed.web.access.Access``. This test walks the application's
route table and

- fails on a route without a declaration, and on a declaration without a route (stale);
- sends one request per route and identity (anonymous, the demo clinician of the requesting
  facility, the demo specialist assigned to the consult, the demo coordinator, an admin),
  path parameters filled from one fully seeded consult (``seed_full_consult``), unsafe
  methods with the session's CSRF token and an empty JSON body (API) or form (pages);
- asserts that an identity not declared never gets a success (a 2xx, or a 3xx other than
  the redirect to the login page), that anonymous on a non-public route gets 401 (API) or
  the redirect to ``/login`` (pages), that a declared identity is never refused (401/403) a
  GET, and that nobody ever gets a 5xx.

Object-level rules (``Access.scope``) are exercised with objects inside the scope of each
declared identity (the clinician's own note and upload, the specialist's own on-call block):
the matrix checks roles; the object rules have their own tests per domain. Not covered:
websocket routes (the signalling socket authenticates with its own ticket,
tests/test_sessions_ws.py), static mounts (public files), and ``/metrics``' address and
token rule (declared here, checked by tests/test_metrics_access.py). Parameters no seeded
object fills (an unlock link's or an on-call accept link's token) get a well-formed token
that matches nothing.

Unsafe requests carry an empty body, so most stop at validation (422) once the role checks
of their dependencies passed; the matrix proves refusals, not the writes themselves. They
run after every GET, the logouts last. ``TELEMED_MATRIX_DUMP=/tmp/matrix`` writes every
cell's answer to ``/tmp/matrix.<backend>`` (what a new declaration is checked against).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.routing import Mount

from telemed.accounts.models import Role, User
from telemed.app import create_app
from telemed.appointments.models import Appointment
from telemed.attachments.models import Attachment
from telemed.consults.models import Consult
from telemed.db import pk, utcnow
from telemed.notes import service as notes
from telemed.notes.models import ConsultNote
from telemed.notes.schemas import NoteCreate
from telemed.notifications.models import Notification, OutboxMessage
from telemed.offers.models import ConsultOffer
from telemed.settings import Environment, Settings
from telemed.web.access import ANONYMOUS, Access, Identity
from tests.directory_helpers import Specialists
from tests.fhir_helpers import Demo, seed_full_consult
from tests.helpers import ApiClient, Users, consult_payload

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Routes whose module is not ours (FastAPI's ``/openapi.json``) are declared in telemed.app.
FOREIGN_ROUTES_MODULE = "telemed.app"
#: Routes that end the session: sent last, so every other cell runs logged in.
LAST = frozenset({("POST", "/api/v1/auth/logout"), ("POST", "/logout")})
#: A well-formed signed-link token that matches nothing (unlock, on-call accept).
NO_SUCH_TOKEN = "t" * 43


@dataclass(frozen=True)
class RouteCell:
    method: str
    path: str
    endpoint: Callable[..., Any]

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def route_table(app: FastAPI) -> list[RouteCell]:
    """Every (method, HTTP path) of the app with its endpoint: included routers walked
    through their effective routes (FastAPI 0.165 wraps them), websockets and mounts left
    out."""
    found: list[RouteCell] = []
    for route in app.routes:
        if isinstance(route, Mount | APIWebSocketRoute):
            continue
        if type(route).__name__ == "_IncludedRouter":
            for context in route.effective_route_contexts():  # type: ignore[attr-defined]
                if isinstance(context.original_route, APIWebSocketRoute):
                    continue
                endpoint = context.endpoint or context.original_route.endpoint
                for method in sorted(context.methods or ()):
                    found.append(RouteCell(method, context.path, endpoint))
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            found.append(RouteCell(method, route.path, route.endpoint))  # type: ignore[attr-defined]
    return found


def module_of(endpoint: Callable[..., Any]) -> str:
    module: str = endpoint.__module__
    return module if module.split(".")[0] == "telemed" else FOREIGN_ROUTES_MODULE


def declarations(module: str) -> dict[str, Access]:
    access: dict[str, Access] = getattr(sys.modules[module], "ACCESS", {})
    return access


def declared(cell: RouteCell) -> Access | None:
    return declarations(module_of(cell.endpoint)).get(cell.endpoint.__name__)


def missing_and_stale(table: list[RouteCell]) -> tuple[list[str], list[str]]:
    missing = sorted(cell.name for cell in table if declared(cell) is None)
    served: dict[str, set[str]] = {}
    for cell in table:
        served.setdefault(module_of(cell.endpoint), set()).add(cell.endpoint.__name__)
    stale = sorted(
        f"{module}.{name}"
        for module, names in served.items()
        for name in declarations(module)
        if name not in names
    )
    return missing, stale


def test_every_route_declares_its_access(tmp_path: Path) -> None:
    """Without a database: a route added without a declaration fails here first."""
    app = create_app(Settings(env=Environment.test, data_dir=tmp_path))
    missing, stale = missing_and_stale(route_table(app))
    assert not missing, "routes without a declared Access:\n" + "\n".join(missing)
    assert not stale, "declared Access without a route (stale):\n" + "\n".join(stale)


# The matrix -------------------------------------------------------------------------------


@dataclass
class Caller:
    """One identity: its client (logged in, or not) and its CSRF token."""

    identity: Identity
    client: TestClient
    csrf: str | None = None
    user: User | None = None


def first_id(db: Session, column: Any, *where: Any) -> int:
    found = db.exec(select(column).where(*where).order_by(column)).first()
    assert found is not None, f"nothing seeded for {column}"
    return int(found)


def seed(
    db: Session, settings: Settings, engine: Engine, users: Users
) -> tuple[Demo, dict[str, Any]]:
    """The demo with one completed consult; the path parameters every identity shares."""
    demo = seed_full_consult(db, settings, engine)
    consult = db.get(Consult, demo.consult_id)
    assert consult is not None
    own_note = notes.create(
        db,
        demo.nurse,
        consult,
        NoteCreate(
            subjective="Still febrile.",
            assessment="Improving.",
            plan="Review tomorrow.",
            diagnoses=[],
            follow_up_on=utcnow().date() + timedelta(days=1),
            follow_up_instruction="Temperature chart.",
        ),
    )
    db.commit()
    # A second, verified specialist: offered the emergency consult (``own_objects``), the
    # object of the user_id routes (deactivate, verify) and a call guest.
    other = Specialists(db, settings, users).make()
    params: dict[str, Any] = {
        "consult_id": demo.consult_id,
        "id": str(demo.consult_id),  # FHIR's ServiceRequest id is the consult's
        "case_id": consult.case_id,
        "note_id": first_id(
            db,
            ConsultNote.id,
            ConsultNote.consult_id == demo.consult_id,
            ConsultNote.author_id == pk(demo.specialist),
        ),
        "attachment_id": first_id(db, Attachment.id, Attachment.consult_id == demo.consult_id),
        "appointment_id": first_id(db, Appointment.id, Appointment.consult_id == demo.consult_id),
        "message_id": first_id(db, OutboxMessage.id),  # a delivery's (retry)
        "notification_id": first_id(db, Notification.id),
        "user_id": pk(other),
        "facility_id": demo.nurse.facility_id,
        "token": NO_SUCH_TOKEN,
        "own_note": pk(own_note),
    }
    return demo, params


def callers(app: FastAPI, users: Users, demo: Demo) -> Iterator[Caller]:
    anonymous = TestClient(app, base_url="http://testserver")
    yield Caller(ANONYMOUS, anonymous)
    admin = users.make(Role.admin)
    for identity, user in (
        (Identity.clinician, demo.nurse),
        (Identity.specialist, demo.specialist),
        (Identity.coordinator, demo.coordinator),
        (Identity.admin, admin),
    ):
        api = ApiClient(TestClient(app, base_url="http://testserver"), user)
        yield Caller(identity, api.client, api.csrf, user)


def made(caller: Caller, url: str, body: dict[str, Any]) -> Any:
    """The id of what ``caller`` creates with ``POST url``."""
    response = caller.client.post(url, json=body, headers={"X-CSRF-Token": caller.csrf or ""})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def own_objects(db: Session, params: dict[str, Any], by: dict[Identity, Caller]) -> None:
    """Objects that belong to one user (an upload, an on-call block), made through the API
    by their owner, so that each declared identity is inside its scope; a call guest; an
    offer (of an emergency, made at once to the other specialist)."""
    consult_id = params["consult_id"]
    file = {"filename": "scan.pdf", "length": 100, "media_type": "application/pdf"}
    params["uploads"] = {
        identity: made(by[identity], f"/api/v1/consults/{consult_id}/uploads", file)
        for identity in (Identity.clinician, Identity.specialist, Identity.coordinator)
    }
    specialist = by[Identity.specialist]
    block = {"specialty": "paediatrics", "weekday": 2, "start": "08:00", "end": "12:00"}
    params["block_id"] = made(specialist, "/api/v1/oncall/blocks", block)
    guest = {"user_id": params["user_id"], "role": "interpreter"}
    params["guest_id"] = made(specialist, f"/api/v1/consults/{consult_id}/guests", guest)
    emergency = consult_payload(urgency="emergency", language="en")
    made(by[Identity.clinician], "/api/v1/consults", emergency)
    db.rollback()  # a fresh read: the offer was made by the app
    params["offer_id"] = first_id(db, ConsultOffer.id)


def parameters_of(caller: Caller, params: dict[str, Any], db: Session) -> dict[str, Any]:
    """The path parameters for this caller: the shared ones, and its own note, upload and
    notification where it has one."""
    values = {k: v for k, v in params.items() if k not in ("uploads", "own_note")}
    if caller.identity is Identity.clinician:
        values["note_id"] = params["own_note"]
    uploads = params["uploads"]
    values["upload_id"] = uploads.get(caller.identity, uploads[Identity.clinician])
    if caller.user is not None:
        own = db.exec(
            select(Notification.id).where(Notification.user_id == pk(caller.user))
        ).first()
        if own is not None:
            values["notification_id"] = own
    return values


def path_of(cell: RouteCell, values: dict[str, Any]) -> str:
    path = cell.path
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    assert "{" not in path, f"no value for a parameter of {cell.name}"
    return path


def is_api(path: str) -> bool:
    return path.startswith(("/api/", "/fhir/"))


def send(caller: Caller, cell: RouteCell, path: str) -> httpx.Response:
    if cell.method not in UNSAFE:
        return caller.client.request(cell.method, path, follow_redirects=False)
    headers = {"X-CSRF-Token": caller.csrf} if caller.csrf else {}
    if is_api(path):
        return caller.client.request(
            cell.method, path, json={}, headers=headers, follow_redirects=False
        )
    form = {"csrf_token": caller.csrf} if caller.csrf else {}
    return caller.client.request(
        cell.method, path, data=form, headers=headers, follow_redirects=False
    )


def to_login(response: httpx.Response) -> bool:
    return response.is_redirect and response.headers.get("location", "").startswith("/login")


def violation(
    cell: RouteCell, access: Access, caller: Caller, response: httpx.Response
) -> str | None:
    """What is wrong with this cell's answer, if anything."""
    status = response.status_code
    if status >= 500:
        return "server error"
    allowed = caller.identity in access.who
    if not allowed:
        if response.is_success or (response.is_redirect and not to_login(response)):
            return "success for an identity not declared"
        if caller.identity is ANONYMOUS:
            if is_api(cell.path) and status != 401:
                return "anonymous on a non-public API route: not 401"
            if not is_api(cell.path) and not to_login(response):
                return "anonymous on a non-public page: not the login page"
        elif to_login(response):  # a page's refusal: a step of the login sends back to it
            return None
        elif cell.method in UNSAFE:
            if not 400 <= status < 500:
                return "refusal of an unsafe request not a 4xx"
        elif status not in (401, 403, 404):
            return "refusal not 401/403/404"
        return None
    if cell.method not in UNSAFE and (
        status in (401, 403) or (caller.identity is not ANONYMOUS and to_login(response))
    ):
        return "a declared identity refused a GET"
    return None


#: Cells with tests of their own: /metrics is for an address or a bearer token, not a role.
OWN_TESTS = frozenset({"GET /metrics"})


def test_the_server_answers_as_declared(
    backend: str,
    engine: Engine,
    db: Session,
    settings: Settings,
    users: Users,
    client: TestClient,
) -> None:
    """Every route and identity, on one seeded database (one test per backend)."""
    demo, params = seed(db, settings, engine, users)
    app = client.app
    assert isinstance(app, FastAPI)
    table = route_table(app)
    missing, stale = missing_and_stale(table)
    assert not missing, missing
    assert not stale, stale
    every = list(callers(app, users, demo))
    by = {caller.identity: caller for caller in every}
    own_objects(db, params, by)
    values = {caller.identity: parameters_of(caller, params, db) for caller in every}
    ordered = sorted(
        table, key=lambda cell: (cell.method in UNSAFE, (cell.method, cell.path) in LAST)
    )
    cells, violations, seen = 0, [], []
    for cell in ordered:
        if cell.name in OWN_TESTS:
            continue
        access = declared(cell)
        assert access is not None
        for caller in every:
            response = send(caller, cell, path_of(cell, values[caller.identity]))
            cells += 1
            answer = f"{response.status_code} {response.headers.get('location', '')}".strip()
            seen.append(f"{cell.name}\t{caller.identity}\t{answer}")
            problem = violation(cell, access, caller, response)
            if problem:
                violations.append(
                    f"{cell.name} as {caller.identity}: {answer} ({problem}) "
                    f"{response.text[:120]!r}"
                )
    dump = os.environ.get("TELEMED_MATRIX_DUMP")
    if dump:
        Path(f"{dump}.{backend}").write_text("\n".join(seen) + "\n")
    print(f"\nauthorization matrix ({backend}): cells: {cells}, violations: {len(violations)}")
    assert not violations, "\n".join(violations)
