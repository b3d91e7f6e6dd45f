"""One error base class for the whole application, mapped to HTTP in one place.

Services raise these; ``install_error_handlers`` turns them into a JSON error body for
``/api`` paths and into a rendered page (or a redirect to the login page) for the rest.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class TelemedError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotAuthenticated(TelemedError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(TelemedError):
    status_code = 403
    code = "forbidden"


class NotFound(TelemedError):
    status_code = 404
    code = "not_found"


class Conflict(TelemedError):
    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class ConsentRequired(Conflict):
    """The patient's consent (to share the case, or to a call) is not in force: the call
    page and API clients recognise the code and say what to record."""

    code = "consent_required"


class ValidationFailed(TelemedError):
    status_code = 422
    code = "validation_failed"


class TooManyRequests(TelemedError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ErrorField(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[ErrorField] | None = None


class ErrorBody(BaseModel):
    """The shape of every error the API returns."""

    error: ErrorDetail


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the errors an endpoint can return."""
    return {code: {"model": ErrorBody} for code in status_codes}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_body(
    code: str, message: str, fields: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return body


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    from telemed.web.middleware import add_security_headers
    from telemed.web.templating import render_error_page  # the page layer depends on us

    async def telemed_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TelemedError)
        headers: dict[str, str] = {}
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after_seconds)
        if _is_api(request):
            fields = [{"field": exc.field, "message": exc.message}] if exc.field else None
            return JSONResponse(
                _error_body(exc.code, exc.message, fields), exc.status_code, headers=headers
            )
        if isinstance(exc, NotAuthenticated):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return render_error_page(request, exc.status_code, exc.message, headers=headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        fields = []
        for err in exc.errors():
            name = _field_name(err.get("loc", ()))
            message = str(err.get("msg", "invalid value"))
            if err.get("type") == "json_invalid":
                name, message = "body", f"malformed JSON: {err.get('ctx', {}).get('error', '')}"
            fields.append({"field": name, "message": message})
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        if _is_api(request):
            return JSONResponse(_error_body("validation_failed", summary, fields), 422)
        return render_error_page(request, 422, summary)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = str(exc.detail)
        if _is_api(request):
            return JSONResponse(
                _error_body(f"http_{exc.status_code}", message),
                exc.status_code,
                headers=getattr(exc, "headers", None),
            )
        return render_error_page(request, exc.status_code, message)

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        message = "Something went wrong on our side; nothing was saved. Please try again."
        response: Response
        if _is_api(request):
            response = JSONResponse(_error_body("internal_error", message), 500)
        else:
            response = render_error_page(request, 500, message)
        add_security_headers(response)  # answered outside our middleware
        return response

    app.add_exception_handler(TelemedError, telemed_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
