"""The service worker at the root path, so that its scope is the whole site.

``telemed/static/sw.js`` lives with the other static files, but a worker served from
``/static/`` could only control ``/static/``; served here it controls every page. It is
revalidated on every update check (``no-cache``) so that a new version is picked up. It is
served as ``telemed.web.assets`` serves every script: its shell list and imports name the
versioned URLs the pages use, so a release that changes any of them changes the worker too,
and the browser installs the new one.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from telemed.web.access import PUBLIC
from telemed.web.assets import ASSETS

SW = "sw.js"  # under telemed/static

router = APIRouter(include_in_schema=False)


@router.get("/sw.js")
def service_worker() -> Response:
    _version, body = ASSETS.served(SW)
    return Response(
        body,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {"service_worker": PUBLIC}
