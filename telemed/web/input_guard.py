"""Every text a request carries, checked once before any endpoint or dependency sees it.

A NUL in any field reached PostgreSQL and came back as a 500, on forms parsed by hand as
much as on schemas; checking each field where it is declared would leave the next field
added unchecked. So the application runs :func:`refuse_unstorable_input` before every
route's own dependencies (before the login check too: the login and registration forms
are open to anyone). It reads the path, the query, a form's fields and file names, and a
JSON body's keys and strings, and refuses the first text with a control character with a
422 naming the field (``telemed.validation.text_problem`` says what is wrong). Bodies of
other types (an upload's chunks) are not read here.

FastAPI has read the body already when the endpoint declares one, and Starlette keeps it,
so the form or JSON is not read twice from the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import HTTPConnection, Request

from telemed.errors import ValidationFailed
from telemed.validation import text_problem

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_DEPTH = 64  # deeper JSON is refused whole (no schema of ours nests past a few levels)


def _json_texts(data: Any) -> Iterator[tuple[str, str]]:
    """(field, text) for every key and string in a JSON document, without recursion."""
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        where, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValidationFailed("the JSON document nests too deeply", field="body")
        if isinstance(value, str):
            yield where or "body", value
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{key}" if where else str(key)
                yield name, key
                stack.append((name, item, depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                stack.append((f"{where}.{index}" if where else str(index), item, depth + 1))


async def _body_texts(request: Request) -> Iterator[tuple[str, str]]:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(FORM_TYPES):
        form = await request.form()
        found: list[tuple[str, str]] = []
        for name, value in form.multi_items():
            found.append((name, name))
            if isinstance(value, UploadFile):
                found.append((name, value.filename or ""))
            else:
                found.append((name, value))
        return iter(found)
    if "json" in content_type:
        try:
            data = json.loads(await request.body())
        except (ValueError, RecursionError):
            return iter(())  # malformed: FastAPI answers 422 (or the endpoint does)
        return _json_texts(data)
    return iter(())


def _check(pairs: Iterator[tuple[str, str]]) -> None:
    for field, text in pairs:
        problem = text_problem(text) if isinstance(text, str) else None
        if problem:
            raise ValidationFailed(f"{field}: {problem}", field=field)


async def refuse_unstorable_input(connection: HTTPConnection) -> None:
    """The application-wide dependency (``FastAPI(dependencies=...)``)."""
    _check(iter(connection.path_params.items()))
    _check(iter(connection.query_params.multi_items()))
    if isinstance(connection, Request) and connection.method in ("POST", "PUT", "PATCH"):
        _check(await _body_texts(connection))
