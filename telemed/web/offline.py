"""The service worker at the root path, so that its scope is the whole site.

``telemed/static/sw.js`` lives with the other static files, but a worker served from
``/static/`` could only control ``/static/``; served here it controls every page. It is
revalidated on every update check (``no-cache``) so that a new version is picked up.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

SW = Path(__file__).resolve().parents[1] / "static" / "sw.js"

router = APIRouter(include_in_schema=False)


@router.get("/sw.js")
def service_worker() -> FileResponse:
    return FileResponse(
        SW,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )
