"""Errors mapped to HTTP (telemed/web/errors.py): JSON under /api/, a page elsewhere, and a
renderer of its own for a sub-application registered by path prefix, whatever was raised."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient

from telemed.clock import SYSTEM_CLOCK
from telemed.errors import NotFound, TooManyRequests
from telemed.settings import Environment, Settings
from telemed.web.errors import Problem, install_error_handlers


def operation_outcome(request: Request, problem: Problem) -> Response:
    """A tiny FHIR-style renderer, as a FHIR endpoint would register one."""
    issue = {"severity": "error", "code": problem.code, "diagnostics": problem.message}
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": [issue]},
        problem.status_code,
        headers=problem.headers or None,
        media_type="application/fhir+json",
    )


def admin_outcome(request: Request, problem: Problem) -> Response:
    return JSONResponse({"admin": problem.code}, problem.status_code)


def _client() -> TestClient:
    app = FastAPI()
    # what the error page reads: the default zone and the request's "now"
    app.state.settings = Settings(env=Environment.test)
    app.state.clock = SYSTEM_CLOCK
    install_error_handlers(
        app, renderers={"/fhir/": operation_outcome, "/fhir/admin/": admin_outcome}
    )

    @app.get("/fhir/Patient/{patient_id}")
    @app.get("/api/v1/patients/{patient_id}")
    @app.get("/patients/{patient_id}")
    def patient(patient_id: int) -> dict[str, int]:
        raise NotFound(f"no patient {patient_id}", field="patient_id")

    @app.get("/fhir/busy")
    def busy() -> None:
        raise TooManyRequests("slow down", retry_after_seconds=30)

    @app.get("/fhir/admin/boom")
    @app.get("/fhir/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    return TestClient(app, raise_server_exceptions=False)


def test_a_path_prefix_renders_every_kind_of_error_its_own_way() -> None:
    client = _client()

    found = client.get("/fhir/Patient/7")  # a service's error
    assert found.status_code == 404
    assert found.headers["content-type"] == "application/fhir+json"
    assert found.json()["issue"] == [
        {"severity": "error", "code": "not_found", "diagnostics": "no patient 7"}
    ]
    invalid = client.get("/fhir/Patient/seven")  # the request failed validation
    assert invalid.status_code == 422
    assert invalid.json()["issue"][0]["code"] == "validation_failed"
    assert "patient_id" in invalid.json()["issue"][0]["diagnostics"]
    missing = client.get("/fhir/Nothing")  # no such route
    assert (missing.status_code, missing.json()["issue"][0]["code"]) == (404, "http_404")
    busy = client.get("/fhir/busy")
    assert (busy.status_code, busy.headers["retry-after"]) == (429, "30")
    bug = client.get("/fhir/boom")
    assert (bug.status_code, bug.json()["issue"][0]["code"]) == (500, "internal_error")
    # the longest prefix wins
    assert client.get("/fhir/admin/boom").json() == {"admin": "internal_error"}


def test_api_paths_keep_the_error_body_and_pages_the_error_page() -> None:
    client = _client()

    api = client.get("/api/v1/patients/7")
    assert api.status_code == 404
    assert api.json() == {
        "error": {
            "code": "not_found",
            "message": "no patient 7",
            "fields": [{"field": "patient_id", "message": "no patient 7"}],
        }
    }
    page = client.get("/patients/7")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "no patient 7" in page.text
