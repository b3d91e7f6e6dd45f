"""OperationOutcome: how a FHIR server says no.

FHIR clients expect an OperationOutcome with ``application/fhir+json``, not the platform's
``{"error": ...}`` body or an HTML page, so the FHIR endpoints render their own errors
(``endpoints.FhirRoute``) with the same statuses and messages as the rest of the API.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

from telemed.errors import TelemedError

FHIR_JSON = "application/fhir+json"

#: Our HTTP status -> the OperationOutcome issue type.
ISSUE_TYPES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 422: "invalid"}


class FhirResponse(Response):
    """A FHIR resource as JSON (already checked against its model)."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def operation_outcome(issue_type: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": issue_type, "diagnostics": diagnostics}],
    }


def outcome_response(status_code: int, message: str) -> FhirResponse:
    issue_type = ISSUE_TYPES.get(status_code, "processing" if status_code < 500 else "exception")
    return FhirResponse(operation_outcome(issue_type, message), status_code=status_code)


def error_response(exc: TelemedError) -> FhirResponse:
    return outcome_response(exc.status_code, exc.message)
