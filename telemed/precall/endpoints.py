"""Network test JSON API: the plan, the echo peer's offer/answer, results, coordinators' view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.precall import auth, service
from telemed.precall.echo import EchoPool
from telemed.precall.schemas import (
    EchoAnswer,
    EchoOfferIn,
    FacilityLinkPublic,
    NetworkTestIn,
    NetworkTestPublic,
    NetworkTestSetup,
    RecommendationPublic,
)
from telemed.web.access import COORDINATORS, NETWORK_TESTERS, OWN
from telemed.web.errors import error_responses

router = APIRouter(tags=["network test"])

ERRORS = error_responses(401, 403, 422)


async def get_echo_pool(request: Request) -> EchoPool:
    pool: EchoPool = request.app.state.network_echo
    return pool


EchoPoolDep = Annotated[EchoPool, Depends(get_echo_pool)]


@router.get("/network-tests/setup", responses=ERRORS)
async def setup(user: CurrentUser, settings: SettingsDep) -> NetworkTestSetup:
    """The test plan (what to send, how much, for how long) and the ICE servers to use
    (STUN, time-limited TURN credentials). Clinicians and specialists."""
    return service.setup_for(settings, user)


@router.post("/network-tests/offer", responses=error_responses(401, 403, 409, 422, 429))
async def offer(
    body: EchoOfferIn, request: Request, user: CurrentUser, pool: EchoPoolDep
) -> EchoAnswer:
    """Connect to the server's echo peer: send a complete SDP offer with the data channels
    `probe` (unordered, `maxRetransmits: 0`) and `bulk` (reliable), get the complete answer.

    At most a few tests run at once per server (429 with `Retry-After` when busy); a new
    offer replaces your previous test; a test peer is closed after 30 s at the latest. The
    echo peer only uses the offer's candidates at the address this request comes from
    (422 if there is none).
    """
    auth.ensure_can_test(user)
    client = request.client.host if request.client else ""
    return EchoAnswer(sdp=await pool.answer(pk(user), body.sdp, client))


@router.post("/network-tests", status_code=201, responses=ERRORS)
def store(
    body: NetworkTestIn, request: Request, user: CurrentUser, db: SessionDep, now: NowDep
) -> NetworkTestPublic:
    """Store what the browser measured, for you and your facility. Loss (from the probe
    counts) and the recommendation (video, low-bandwidth video, audio only, or messages) are
    computed by the server; a recommendation sent by the client is ignored."""
    row = service.record(db, user, body, user_agent=request.headers.get("user-agent", ""), now=now)
    return service.public(row)


@router.get("/network-tests/recommendation", responses=ERRORS)
def recommendation(user: CurrentUser, db: SessionDep, now: NowDep) -> RecommendationPublic:
    """The call profile for your link: from your latest test of the last 30 days, else your
    facility's; null without one."""
    return service.recommendation_for(db, user, now)


@router.get("/network-tests/facilities", responses=ERRORS)
def facilities(user: CurrentUser, db: SessionDep) -> list[FacilityLinkPublic]:
    """Every facility with its latest network test and how many it has (coordinators)."""
    return service.facility_links(db, user)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "setup": NETWORK_TESTERS,
    "offer": NETWORK_TESTERS,
    "store": NETWORK_TESTERS,
    "recommendation": OWN,
    "facilities": COORDINATORS,
}
