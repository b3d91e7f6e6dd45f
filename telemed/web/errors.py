"""Errors mapped to HTTP, in one place: a JSON error body for ``/api/`` paths, a rendered
page (or a redirect to the login page) for the rest, and a renderer of its own for any
sub-application that registers one by path prefix (a FHIR endpoint answers with an
OperationOutcome, not with our error body).

Every handler first reduces what was raised to a :class:`Problem`, so a renderer sees
the same facts whatever went wrong: a service's error, a request that failed validation,
a route that does not exist, or a bug.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from telemed.errors import TelemedError, TooManyRequests
from telemed.form_errors import sentence
from telemed.i18n import N_, gettext
from telemed.web.middleware import add_security_headers
from telemed.web.templating import render_error_page

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
UNEXPECTED = N_("Something went wrong on our side; nothing was saved. Please try again.")


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


# What any API operation can answer, whatever it does: no session (401), a missing CSRF
# token or role (403), an id with no row or past the column (404, 422), a field that
# cannot be stored (422, ``telemed.web.input_guard``), a body past the limit (413).
COMMON_API_ERRORS = (401, 403, 404, 422)
BODY_ERRORS = (413,)


def declare_common_errors(app: FastAPI, prefix: str = API_PREFIX) -> None:
    """Add the errors every operation under ``prefix`` can give to the OpenAPI document, so
    that it says what the server does (an operation documents its own further codes)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        document.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorBody, ErrorDetail, ErrorField):
            shape = model.model_json_schema(ref_template="#/components/schemas/{model}")
            shape.pop("$defs", None)  # each is a component of its own
            document["components"]["schemas"].setdefault(model.__name__, shape)
        error = {
            "description": "Error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        for path, operations in document.get("paths", {}).items():
            if not path.startswith(prefix):
                continue
            for operation in operations.values():
                codes = COMMON_API_ERRORS + (BODY_ERRORS if "requestBody" in operation else ())
                for code in codes:
                    operation.setdefault("responses", {}).setdefault(str(code), error)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


@dataclass(frozen=True)
class Problem:
    """What went wrong, in HTTP terms, before it is rendered."""

    status_code: int
    code: str  # "not_found", "validation_failed", "http_405", "internal_error", ...
    message: str
    fields: list[ErrorField] = field(default_factory=list)  # the input that was refused
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Retry-After
    # What a page shows instead of ``message`` when that is for programs (pydantic's
    # validation text): sentences in the reader's language (``telemed.form_errors``).
    readable: str = ""


Renderer = Callable[[Request, Problem], Response]


def render_json(request: Request, problem: Problem) -> Response:
    """The API's error body (:class:`ErrorBody`)."""
    detail = ErrorDetail(code=problem.code, message=problem.message, fields=problem.fields or None)
    return JSONResponse(
        ErrorBody(error=detail).model_dump(exclude_none=True),
        problem.status_code,
        headers=problem.headers or None,
    )


def render_page(request: Request, problem: Problem) -> Response:
    """The error page; a page that needs a login sends the browser to the login page."""
    if problem.code == "not_authenticated":
        path = request.url.path  # a lapsed step of the login itself starts the login again
        target = "/login" if path.startswith("/login") else f"/login?next={path}"
        return RedirectResponse(target, status_code=303)
    if problem.code == "reauth_required":  # back to the page the form was on, afterwards
        back = request.url.path if request.method == "GET" else _referring_path(request)
        return RedirectResponse(f"/reauth?{urlencode({'next': back})}", status_code=303)
    return render_error_page(
        request,
        problem.status_code,
        problem.readable or problem.message,
        headers=problem.headers or None,
    )


def _referring_path(request: Request) -> str:
    """The path of the page that sent a form, if it is ours; else the home page."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc != request.url.netloc:
        return "/"
    return referer.path if referer.path.startswith("/") else "/"


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def problem_of(exc: Exception) -> Problem:
    """Anything raised while answering a request, as a :class:`Problem`."""
    if isinstance(exc, TelemedError):
        headers = {}
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after_seconds)
        message = exc.shown()  # in the reader's language; the code stays machine-readable
        fields = [ErrorField(field=exc.field, message=message)] if exc.field else []
        return Problem(exc.status_code, exc.code, message, fields, headers)
    if isinstance(exc, RequestValidationError):
        fields, sentences = [], []
        for err in exc.errors():
            name = _field_name(err.get("loc", ()))
            message = str(err.get("msg", "invalid value"))
            if err.get("type") == "json_invalid":
                name, message = "body", f"malformed JSON: {err.get('ctx', {}).get('error', '')}"
            fields.append(ErrorField(field=name, message=message))
            sentences.append(sentence(err, name.rpartition(".")[2].replace("_", " ")))
        summary = "; ".join(f"{f.field}: {f.message}" for f in fields)
        return Problem(422, "validation_failed", summary, fields, readable=" ".join(sentences))
    if isinstance(exc, StarletteHTTPException):
        headers = dict(exc.headers or {})
        detail = gettext(str(exc.detail))  # Starlette's "Not Found" and the like
        return Problem(exc.status_code, f"http_{exc.status_code}", detail, [], headers)
    return Problem(500, "internal_error", gettext(UNEXPECTED))


def install_error_handlers(app: FastAPI, renderers: Mapping[str, Renderer] | None = None) -> None:
    """Answer every error raised in ``app``. ``renderers`` maps a path prefix to the renderer
    of the errors under it (the longest matching prefix wins); ``/api/`` answers with JSON
    and every other path with a page unless a renderer says otherwise."""
    by_prefix = {API_PREFIX: render_json, **(renderers or {})}
    chosen = sorted(by_prefix.items(), key=lambda item: -len(item[0]))

    def answer(request: Request, problem: Problem) -> Response:
        path = request.url.path
        renderer = next((r for prefix, r in chosen if path.startswith(prefix)), render_page)
        return renderer(request, problem)

    async def expected(request: Request, exc: Exception) -> Response:
        return answer(request, problem_of(exc))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = answer(request, problem_of(exc))
        # Answered outside our middleware (``app.state.hsts``: production).
        add_security_headers(response, hsts=getattr(request.app.state, "hsts", False))
        # The server gives up on this connection after a 500 (Starlette re-raises the error
        # to the server); saying so lets the client open a new one instead of finding the
        # old one dropped under its next request.
        response.headers["connection"] = "close"
        return response

    app.add_exception_handler(TelemedError, expected)
    app.add_exception_handler(RequestValidationError, expected)
    app.add_exception_handler(StarletteHTTPException, expected)
    app.add_exception_handler(Exception, unexpected)
