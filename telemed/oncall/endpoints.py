"""On-call JSON API: a specialist's blocks, the coordinators' week rota with its gaps."""

from __future__ import annotations

from fastapi import APIRouter, Response

from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.oncall import report, service
from telemed.oncall.schemas import BlockIn, BlockPublic, RotaPublic
from telemed.validation import Id
from telemed.web.access import COORDINATORS, SPECIALIST_OWN
from telemed.web.errors import error_responses

router = APIRouter(tags=["on-call"])

ERRORS = error_responses(401, 403, 404, 409, 422)


@router.get("/oncall/blocks", responses=ERRORS)
def my_blocks(user: CurrentUser, db: SessionDep) -> list[BlockPublic]:
    """Your weekly on-call blocks, in your own zone (specialists)."""
    return service.my_blocks(db, user)


@router.post("/oncall/blocks", status_code=201, responses=ERRORS)
def declare(body: BlockIn, user: CurrentUser, db: SessionDep, now: NowDep) -> BlockPublic:
    """Declare a weekly block for a specialty you hold; refused when it overlaps your leave
    or another of your blocks of that specialty, or ends before it starts."""
    return service.declare(db, user, body, now)


@router.delete("/oncall/blocks/{block_id}", status_code=204, responses=ERRORS)
def remove(block_id: Id, user: CurrentUser, db: SessionDep) -> Response:
    service.remove(db, user, block_id)
    return Response(status_code=204)


@router.get("/oncall/rota", responses=ERRORS)
def rota(user: CurrentUser, db: SessionDep, now: NowDep, settings: SettingsDep) -> RotaPublic:
    """The coming week from midnight today in the clinics' zone (Maseru): per specialty
    who is on call when and the hours nobody covers (coordinators)."""
    return report.week_rota(db, user, now, settings.clinician_timezone)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "my_blocks": SPECIALIST_OWN,
    "declare": SPECIALIST_OWN,
    "remove": SPECIALIST_OWN,
    "rota": COORDINATORS,
}
