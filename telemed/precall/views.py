"""Network test pages: the test itself, and the coordinators' facility links."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.precall import service
from telemed.precall.models import NetworkRecommendation
from telemed.web.access import COORDINATORS, NETWORK_TESTERS
from telemed.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/network-test")
def network_test(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep, now: NowDep
) -> HTMLResponse:
    """Runs in the browser (precall.js); without JavaScript it shows the last result."""
    setup = service.setup_for(settings, user)
    latest = service.latest_result(db, user, now)
    return render(
        request,
        "precall.html",
        {
            "setup": setup.model_dump(mode="json"),
            "latest": None if latest is None else service.public(latest),
            "own": latest is not None and latest.user_id == user.id,
        },
    )


@router.get("/coordinator/network")
def coordinator_network(request: Request, user: CurrentUser, db: SessionDep) -> HTMLResponse:
    links = service.facility_links(db, user)
    tested = [f for f in links if f.latest is not None]
    summary = {
        service.LABELS[r]: sum(1 for f in tested if f.latest and f.latest.recommendation == r)
        for r in NetworkRecommendation
    }
    return render(
        request,
        "coordinator_network.html",
        {"links": links, "tested": len(tested), "summary": summary},
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {"network_test": NETWORK_TESTERS, "coordinator_network": COORDINATORS}
