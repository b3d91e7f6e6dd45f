"""A stand-in DHIS2 for the tests: a real HTTP server (a thread of this process) that
checks what it is sent the way DHIS2's ``/api/dataValueSets`` does (authentication, content
type, the JSON or ADX shape, UIDs, the period) and answers as DHIS2 2.38+ does: a web
message wrapping an import summary, HTTP 409 with conflicts for an unknown org unit; or,
as the test says, a 500, a login page that is not JSON, or no answer in time.

Like DHIS2 it keeps what it imported, so a second push of the same values is "updated".
"""

from __future__ import annotations

import base64
import json
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ADX = "{urn:ihe:qrph:adx:2015}"
UID = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")
JSON_PERIOD = re.compile(r"^\d{4}(0[1-9]|1[0-2])$")
ADX_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-01/P1M$")
USERNAME, PASSWORD, TOKEN = "telemed", "district-2026", "d2pat_telemedTestToken0000000001"


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    content_type: str
    authorization: str
    body: bytes
    problems: list[str]  # what DHIS2 would have refused in the shape
    values: list[dict[str, str]]  # as understood: dataElement, period, orgUnit, coc, value


@dataclass
class FakeDhis2:
    """``mode``: "dhis2" (answer like DHIS2), "500", "html" (a login page with 200),
    "slow" (no answer within the client's timeout)."""

    url: str = ""
    mode: str = "dhis2"
    unknown_org_units: set[str] = field(default_factory=set)  # answered as conflicts
    legacy: bool = False  # answer a bare import summary, as DHIS2 before 2.38
    received: list[Received] = field(default_factory=list)
    stored: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def answer(self, request: Received) -> tuple[int, str, bytes]:
        if self.mode == "500":
            return _json(
                500,
                {
                    "httpStatus": "Internal Server Error",
                    "httpStatusCode": 500,
                    "status": "ERROR",
                    "message": "could not execute statement; nested exception is "
                    "org.hibernate.exception.LockAcquisitionException",
                },
            )
        if self.mode == "html":
            page = b"<!DOCTYPE html><html><title>DHIS 2</title><body>Sign in</body></html>"
            return 200, "text/html;charset=UTF-8", page
        if not _authorised(request.authorization):
            return _json(
                401,
                {"httpStatus": "Unauthorized", "httpStatusCode": 401, "status": "ERROR"},
            )
        if request.problems:
            return _json(
                400,
                {
                    "httpStatus": "Bad Request",
                    "httpStatusCode": 400,
                    "status": "ERROR",
                    "message": "; ".join(request.problems),
                },
            )
        return self._import(request)

    def _import(self, request: Received) -> tuple[int, str, bytes]:
        dry_run = request.query.get("dryRun") == ["true"]
        imported = updated = ignored = 0
        conflicts: list[dict[str, Any]] = []
        for index, v in enumerate(request.values):
            if v["orgUnit"] in self.unknown_org_units:
                ignored += 1
                conflicts.append(
                    {
                        "object": v["orgUnit"],
                        "objects": {"organisationUnit": v["orgUnit"]},
                        "value": "Organisation unit not found or not accessible: " + v["orgUnit"],
                        "errorCode": "E7612",
                        "property": "orgUnit",
                        "indexes": [index],
                    }
                )
                continue
            key = (v["dataElement"], v["period"], v["orgUnit"], v["categoryOptionCombo"])
            if key in self.stored:
                updated += 1
            else:
                imported += 1
            if not dry_run:
                self.stored[key] = v["value"]
        status = "WARNING" if conflicts else "SUCCESS"
        summary = {
            "responseType": "ImportSummary",
            "status": status,
            "importOptions": {"dryRun": dry_run, "idSchemes": {}},
            "description": "Import process completed successfully",
            "importCount": {
                "imported": imported,
                "updated": updated,
                "ignored": ignored,
                "deleted": 0,
            },
            "conflicts": conflicts,
            "dataSetComplete": "false",
        }
        if self.legacy:
            return _json(200, summary)
        code = 409 if conflicts else 200
        return _json(
            code,
            {
                "httpStatus": "Conflict" if conflicts else "OK",
                "httpStatusCode": code,
                "status": status if conflicts else "OK",
                "message": "One more conflicts encountered, please check import summary."
                if conflicts
                else "Import was successful.",
                "response": summary,
            },
        )


def _json(code: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
    return code, "application/json;charset=UTF-8", json.dumps(body).encode()


def _authorised(header: str) -> bool:
    if header == f"ApiToken {TOKEN}":
        return True
    expected = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    return header == f"Basic {expected}"


def check_json(body: bytes) -> tuple[list[str], list[dict[str, str]]]:
    """DHIS2's dataValueSets JSON: the problems in its shape, and its values."""
    problems: list[str] = []
    try:
        document = json.loads(body)
    except ValueError:
        return ["body is not JSON"], []
    if not isinstance(document, dict):
        return ["body is not a JSON object"], []
    if not UID.match(str(document.get("dataSet", ""))):
        problems.append(f"dataSet {document.get('dataSet')!r} is not a UID")
    if not JSON_PERIOD.match(str(document.get("period", ""))):
        problems.append(f"period {document.get('period')!r} is not yyyyMM")
    values = document.get("dataValues")
    if not isinstance(values, list):
        return [*problems, "dataValues is not a list"], []
    out = []
    for index, v in enumerate(values):
        for key in ("dataElement", "orgUnit", "categoryOptionCombo"):
            if not UID.match(str(v.get(key, ""))):
                problems.append(f"dataValues[{index}].{key} {v.get(key)!r} is not a UID")
        if v.get("period") != document.get("period"):
            problems.append(f"dataValues[{index}].period differs from the set's")
        if not isinstance(v.get("value"), str):
            problems.append(f"dataValues[{index}].value is not a string")
        out.append({k: str(v.get(k)) for k in ("dataElement", "period", "orgUnit", "value")})
        out[-1]["categoryOptionCombo"] = str(v.get("categoryOptionCombo"))
    return problems, out


def check_adx(body: bytes) -> tuple[list[str], list[dict[str, str]]]:
    """ADX: the root and groups in the ADX namespace, each group with dataSet, orgUnit and
    an ISO 8601 period of one month, each dataValue with dataElement and value."""
    problems: list[str] = []
    try:
        root = ET.fromstring(body)  # noqa: S314 - the test's own payload
    except ET.ParseError as exc:
        return [f"not XML: {exc}"], []
    if root.tag != f"{ADX}adx":
        return [f"root element {root.tag!r} is not adx in urn:ihe:qrph:adx:2015"], []
    out = []
    for group in root:
        if group.tag != f"{ADX}group":
            problems.append(f"unexpected element {group.tag!r}")
            continue
        period = group.get("period", "")
        if not ADX_PERIOD.match(period):
            problems.append(f"group period {period!r} is not YYYY-MM-01/P1M")
        for key in ("dataSet", "orgUnit"):
            if not UID.match(group.get(key, "")):
                problems.append(f"group {key} {group.get(key)!r} is not a UID")
        for value in group:
            if value.tag != f"{ADX}dataValue":
                problems.append(f"unexpected element {value.tag!r} in a group")
                continue
            for key in ("dataElement", "categoryOptionCombo"):
                if not UID.match(value.get(key, "")):
                    problems.append(f"dataValue {key} {value.get(key)!r} is not a UID")
            if value.get("value") is None:
                problems.append("dataValue without value")
            out.append(
                {
                    "dataElement": value.get("dataElement", ""),
                    "period": period[:4] + period[5:7],
                    "orgUnit": group.get("orgUnit", ""),
                    "categoryOptionCombo": value.get("categoryOptionCombo", ""),
                    "value": value.get("value", ""),
                }
            )
    return problems, out


def _handler(server: FakeDhis2) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            content_type = self.headers.get("Content-Type", "")
            problems: list[str] = []
            values: list[dict[str, str]] = []
            if url.path != "/api/dataValueSets":
                problems.append(f"no such resource {url.path}")
            elif content_type.startswith("application/json"):
                problems, values = check_json(body)
            elif content_type.startswith("application/adx+xml"):
                problems, values = check_adx(body)
            else:
                problems.append(f"unsupported content type {content_type!r}")
            request = Received(
                url.path,
                parse_qs(url.query),
                content_type,
                self.headers.get("Authorization", ""),
                body,
                problems,
                values,
            )
            server.received.append(request)
            if server.mode == "slow":
                server.stop.wait(10)
                return
            code, kind, answer = server.answer(request)
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler


@contextmanager
def fake_dhis2() -> Iterator[FakeDhis2]:
    fake = FakeDhis2()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    httpd.daemon_threads = True
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def closed_port_url() -> str:
    """The URL of a port nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
