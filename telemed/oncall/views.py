"""On-call pages: a specialist's blocks, the coordinators' week rota with its gaps (in
Maseru time), and the one-tap accept link's confirm page.

The link's GET only shows what would be accepted (a mail scanner or a chat app's preview
fetches links: it must never accept); the POST from that page accepts. The POST carries no
CSRF token and needs no session: the signed single-use link in its URL is the proof.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from typing import Annotated

from babel.dates import get_day_names
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from telemed import flows
from telemed.consults.models import Consult
from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep, SettingsDep, WritingSessionDep
from telemed.errors import NotFound, TelemedError, ValidationFailed
from telemed.form_errors import field_sentences
from telemed.i18n import N_, babel_locale, gettext
from telemed.offers import repository as offers_repository
from telemed.oncall import report, service
from telemed.oncall.schemas import BlockIn
from telemed.validation import Id
from telemed.web.access import COORDINATORS, EVERYONE, SPECIALIST_OWN, Access
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)

BLOCKS_PATH = "/specialists/oncall"
# The token is in the URL: never sent on as a referrer, never kept by a cache.
LINK_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def weekdays() -> list[str]:
    """Monday to Sunday in the reader's language (Babel's CLDR names: "Mantaha" in Sesotho)."""
    names = get_day_names("wide", locale=babel_locale())
    return [names[day] for day in range(7)]


def _blocks_page(
    request: Request, user: CurrentUser, db: SessionDep, error: TelemedError | None = None
) -> HTMLResponse:
    mine = service.my_blocks(db, user)
    held = service.held_specialties(db, user)
    return render(
        request,
        "oncall_blocks.html",
        {
            "blocks": mine,
            "weekdays": weekdays(),
            "specialties": held,
            "error": error,
            "midnight": time(0),
        },
        status_code=error.status_code if error else 200,
    )


@router.get(BLOCKS_PATH)
def blocks(request: Request, user: CurrentUser, db: SessionDep) -> HTMLResponse:
    return _blocks_page(request, user, db)


# The block form's labels, for the error sentences (``telemed.form_errors``).
BLOCK_LABELS = {
    "specialty": N_("Specialty"),
    "weekday": N_("Day"),
    "start": N_("From"),
    "end": N_("Until (00:00 = midnight at the end of the day)"),
}


def _first(loc: Sequence[int | str]) -> str:
    return str(loc[0]) if loc else "__all__"


@router.post(BLOCKS_PATH)
def add_block(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    now: NowDep,
    specialty: Annotated[str, Form(max_length=40)] = "",
    weekday: Annotated[str, Form(max_length=2)] = "",
    start: Annotated[str, Form(max_length=8)] = "",
    end: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    try:
        data = BlockIn.model_validate(
            {"specialty": specialty, "weekday": weekday, "start": start, "end": end}
        )
    except ValidationError as exc:
        field, sentence = next(iter(field_sentences(exc, BLOCK_LABELS, _first).items()))
        return _blocks_page(request, user, db, ValidationFailed(sentence, field=field))
    try:
        service.declare(db, user, data, now)
    except TelemedError as exc:
        return _blocks_page(request, user, db, exc)
    return RedirectResponse(BLOCKS_PATH, status_code=303)


@router.post(BLOCKS_PATH + "/{block_id}/remove")
def remove_block(block_id: Id, user: CurrentUser, db: SessionDep) -> Response:
    service.remove(db, user, block_id)
    return RedirectResponse(BLOCKS_PATH, status_code=303)


@router.get("/coordinator/oncall")
def coordinator_rota(
    request: Request, user: CurrentUser, db: SessionDep, now: NowDep, settings: SettingsDep
) -> HTMLResponse:
    week = report.week_rota(db, user, now, settings.clinician_timezone)
    return render(request, "oncall_rota.html", {"rota": week})


def _link_page(
    request: Request,
    token: str,
    status: int,
    message: str,
    consult: Consult | None = None,
    ok: bool = False,
) -> HTMLResponse:
    return render(
        request,
        "oncall_link.html",
        {
            "message": message,
            "consult": consult,
            "ok": ok,
            "action": request.url.path,
            "link_token": token,
        },
        status_code=status,
        headers=LINK_HEADERS,
    )


@router.get("/oncall/accept/{token}")
def link_confirm(
    request: Request, token: str, db: SessionDep, now: NowDep, policy: PolicyDep
) -> HTMLResponse:
    """Shows what a tap on "Accept" would take; changes nothing."""
    try:
        if policy.oncall is None:
            raise NotFound(N_("on-call links are not enabled"), field="token")
        claim, user = service.check_link(db, token, now, policy.oncall)
        offer = offers_repository.get_offer(db, claim.offer_id)
        consult = db.get(Consult, offer.consult_id) if offer is not None else None
        if consult is None:
            raise NotFound(N_("this link's offer no longer exists"), field="token")
    except TelemedError as exc:
        service.link_refused(db, token, exc)
        return _link_page(request, token, exc.status_code, exc.shown())
    service.link_read(db, claim, user, consult)
    return _link_page(
        request,
        token,
        200,
        gettext("%(name)s, you are on call.") % {"name": user.full_name},
        consult,
    )


@router.post("/oncall/accept/{token}")
def link_accept(
    request: Request,
    token: str,
    db: WritingSessionDep,
    now: NowDep,
    policy: PolicyDep,
    settings: SettingsDep,
) -> HTMLResponse:
    try:
        offer = flows.accept_by_link(db, token, now, policy, settings)
    except TelemedError as exc:
        return _link_page(request, token, exc.status_code, exc.shown())
    consult = db.get(Consult, offer.consult_id)
    return _link_page(
        request, token, 200, gettext("Accepted: the consult is yours."), consult, ok=True
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "blocks": SPECIALIST_OWN,
    "add_block": SPECIALIST_OWN,
    "remove_block": SPECIALIST_OWN,
    "coordinator_rota": COORDINATORS,
    # The signed link is the credential: no login needed.
    "link_confirm": Access(*EVERYONE, scope="the holder of the accept link"),
    "link_accept": Access(*EVERYONE, scope="the holder of the accept link"),
}
