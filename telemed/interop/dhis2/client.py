"""Posting a payload to DHIS2 and reading its import summary.

``POST {url}/api/dataValueSets`` with basic auth or ``Authorization: ApiToken <token>``
(a DHIS2 personal access token). DHIS2 answers an import summary: from 2.38 wrapped in a
web message (``{"status": "OK"|"WARNING"|"ERROR", "response": {"responseType":
"ImportSummary", "status", "importCount": {"imported", "updated", "ignored", "deleted"},
"conflicts": [...]}}``, HTTP 409 when there are conflicts), before that the summary itself.
Both are read. Anything else (no answer, a refusal, a 5xx, a page that is not JSON, a
redirect to a login page) is a ``Dhis2Error`` saying what happened, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from telemed.errors import TelemedError
from telemed.interop.dhis2.payload import Format, Payload
from telemed.settings import Settings


class Dhis2Error(TelemedError):
    """DHIS2 could not be reached, refused the request or answered something unusable."""

    status_code = 502
    code = "dhis2_failed"


@dataclass(frozen=True)
class Dhis2Server:
    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    timeout_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Dhis2Server:
        if not settings.dhis2_url:
            raise Dhis2Error("no DHIS2 server is set: set TELEMED_DHIS2_URL")
        if not settings.dhis2_token and not (settings.dhis2_username and settings.dhis2_password):
            raise Dhis2Error(
                "no DHIS2 credentials: set TELEMED_DHIS2_TOKEN (a personal access token) "
                "or TELEMED_DHIS2_USERNAME and TELEMED_DHIS2_PASSWORD"
            )
        return cls(
            settings.dhis2_url,
            settings.dhis2_username,
            settings.dhis2_password,
            settings.dhis2_token,
            settings.dhis2_timeout_seconds,
        )

    @property
    def endpoint(self) -> str:
        return f"{self.url.rstrip('/')}/api/dataValueSets"


@dataclass(frozen=True)
class ImportConflict:
    object: str
    value: str
    error_code: str | None = None

    def __str__(self) -> str:
        code = f" [{self.error_code}]" if self.error_code else ""
        return f"{self.object}: {self.value}{code}"


@dataclass(frozen=True)
class ImportSummary:
    status: str  # SUCCESS, WARNING or ERROR
    imported: int
    updated: int
    ignored: int
    deleted: int
    conflicts: tuple[ImportConflict, ...]
    description: str = ""
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """Everything sent was taken: no conflict, nothing ignored."""
        return self.status == "SUCCESS" and not self.conflicts and not self.ignored

    @property
    def accepted(self) -> bool:
        """DHIS2 imported the document (perhaps with conflicts on some values, which a
        retry of the same document would not resolve); ERROR means nothing was taken."""
        return self.status in ("SUCCESS", "WARNING")

    def line(self) -> str:
        return (
            f"{self.status}: {self.imported} imported, {self.updated} updated, "
            f"{self.ignored} ignored, {self.deleted} deleted, {len(self.conflicts)} conflict(s)"
        )


def post(
    server: Dhis2Server,
    payload: Payload,
    *,
    dry_run: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> ImportSummary:
    """Send ``payload``; with ``dry_run`` DHIS2 checks it and stores nothing."""
    params = {"dryRun": "true"} if dry_run else {}
    if payload.format is Format.adx:  # DHIS2's ADX reader assumes codes unless told
        params.update(idScheme="UID", dataElementIdScheme="UID", orgUnitIdScheme="UID")
    headers = {"Content-Type": payload.content_type, "Accept": "application/json"}
    auth: httpx.BasicAuth | None = None
    if server.token:
        headers["Authorization"] = f"ApiToken {server.token}"
    else:
        auth = httpx.BasicAuth(server.username or "", server.password or "")
    try:
        with httpx.Client(
            timeout=server.timeout_seconds, transport=transport, auth=auth, follow_redirects=False
        ) as client:
            response = client.post(
                server.endpoint, content=payload.body, params=params, headers=headers
            )
    except httpx.TimeoutException:
        raise Dhis2Error(
            f"DHIS2 at {server.endpoint} did not answer within {server.timeout_seconds:g} s"
        ) from None
    except httpx.HTTPError as exc:
        raise Dhis2Error(f"cannot reach DHIS2 at {server.endpoint}: {exc}") from None
    return read_answer(server, response, dry_run)


def read_answer(server: Dhis2Server, response: httpx.Response, dry_run: bool) -> ImportSummary:
    where = f"DHIS2 at {server.endpoint}"
    if response.status_code in (401, 403):
        raise Dhis2Error(f"{where} refused the credentials (HTTP {response.status_code})")
    if response.is_redirect:
        raise Dhis2Error(
            f"{where} redirected to {response.headers.get('location', '?')} "
            f"(HTTP {response.status_code}): a login page? Check the URL and credentials"
        )
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise Dhis2Error(
            f"{where} answered HTTP {response.status_code} with {kind}, not a JSON import "
            f"summary: {_excerpt(response.text)}"
        ) from None
    summary = _summary_in(body)
    if summary is None:
        message = body.get("message") if isinstance(body, dict) else None
        raise Dhis2Error(
            f"{where} answered HTTP {response.status_code} without an import summary: "
            f"{message or _excerpt(response.text)}"
        )
    return _parse_summary(summary, dry_run)


def _summary_in(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        return None
    inner = body.get("response")
    if isinstance(inner, dict) and "importCount" in inner:
        return inner
    if "importCount" in body:
        return body
    return None


def _parse_summary(summary: dict[str, Any], dry_run: bool) -> ImportSummary:
    count = summary.get("importCount") or {}
    conflicts = tuple(
        ImportConflict(str(c.get("object", "")), str(c.get("value", "")), c.get("errorCode"))
        for c in summary.get("conflicts") or ()
        if isinstance(c, dict)
    )
    return ImportSummary(
        status=str(summary.get("status", "ERROR")).upper(),
        imported=int(count.get("imported", 0)),
        updated=int(count.get("updated", 0)),
        ignored=int(count.get("ignored", 0)),
        deleted=int(count.get("deleted", 0)),
        conflicts=conflicts,
        description=str(summary.get("description") or ""),
        dry_run=dry_run,
    )


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return (flat[:200] + "…") if len(flat) > 200 else (flat or "(empty)")
