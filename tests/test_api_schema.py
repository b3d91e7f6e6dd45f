"""The OpenAPI document says what the server does (issue 13, item 7): schemathesis generates
requests from ``/openapi.json`` for every operation, sends them with a signed-in session,
and checks that no answer is a 500, that every status code is declared for its operation,
and that every answer matches its declared schema. Bounded: a few examples per operation."""

from __future__ import annotations

import time
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from telemed.accounts.models import Role
from tests.conftest import LoginFn
from tests.helpers import Users

EXAMPLES = 4  # per operation; the whole API in well under a minute per database
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Logging out would end the session the rest runs in; a chunk's body is bytes, which
# schemathesis cannot generate for its media type (tests/test_attachments.py sends them).
SKIPPED = {("POST", "/api/v1/auth/logout"), ("PATCH", "/api/v1/uploads/{upload_id}")}


def test_every_operation_conforms_to_the_document(users: Users, login: LoginFn) -> None:
    coordinator = login(users.make(Role.coordinator))
    app: Any = coordinator.client.app
    schema = schemathesis.openapi.from_dict(app.openapi())
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        started = time.monotonic()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any, operation: Any = operation) -> None:
            kwargs = case.as_transport_kwargs(
                base_url="http://testserver", headers={"X-CSRF-Token": coordinator.csrf}
            )
            kwargs.pop("cookies", None)
            kwargs.pop("allow_redirects", None)
            response = coordinator.client.request(**kwargs, follow_redirects=False)
            try:
                case.validate_response(response, checks=CHECKS)
            except BaseException as failure:
                failures.append(f"{operation.method.upper()} {operation.path}: {failure}"[:600])

        run()
        print(
            f"{time.monotonic() - started:6.2f}s {operation.method.upper()} {operation.path}",
            flush=True,
        )
    assert not failures, "\n\n".join(failures)
