"""The OpenAPI document says what the server does (issue 13, item 7): schemathesis generates
requests from ``/openapi.json`` for every operation, sends them with a signed-in session,
and checks that no answer is a 500, that every status code is declared for its operation,
and that every answer matches its declared schema. Bounded: a few examples per operation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from telemed.accounts.models import Role
from tests.conftest import LoginFn
from tests.helpers import ApiClient, Users

EXAMPLES = 4  # per operation; the whole API in well under a minute per database
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Logging out would end the session the rest runs in; a chunk's body is bytes, which
# schemathesis cannot generate for its media type (tests/test_attachments.py sends them).
SKIPPED = {("POST", "/api/v1/auth/logout"), ("PATCH", "/api/v1/uploads/{upload_id}")}


def bounded(examples: int) -> settings:
    """Hypothesis settings for a fixed number of generated examples, no shrinking or
    replay database (CI: the figure is the bound, a failure names its input anyway)."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def check_operation(
    operation: Any,
    user: ApiClient,
    checks: list[Any],
    failures: list[str],
    examples: int,
    mode: GenerationMode = GenerationMode.POSITIVE,
) -> None:
    """Send ``examples`` generated requests of ``operation`` as ``user``; each failed check
    is added to ``failures`` with the operation's name (the rest go on)."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @bounded(examples)
    def run(case: Any) -> None:
        kwargs = case.as_transport_kwargs(
            base_url="http://testserver", headers={"X-CSRF-Token": user.csrf}
        )
        kwargs.pop("cookies", None)
        kwargs.pop("allow_redirects", None)
        response = user.client.request(**kwargs, follow_redirects=False)
        try:
            case.validate_response(response, checks=checks)
        except BaseException as failure:  # a FailureGroup: name the operation, go on
            failures.append(f"{operation.method.upper()} {operation.path}: {failure}"[:600])

    # Unsatisfiable: nothing of this operation can be made invalid (no parameters, no body).
    with contextlib.suppress(Unsatisfiable):
        run()


def operations(user: ApiClient) -> Iterator[Any]:
    """Every operation of the user's application's document, but the skipped ones."""
    app: Any = user.client.app
    for result in schemathesis.openapi.from_dict(app.openapi()).get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in SKIPPED:
            yield operation


@pytest.mark.postgres_only
def test_every_operation_conforms_to_the_document(users: Users, login: LoginFn) -> None:
    coordinator = login(users.make(Role.coordinator))
    failures: list[str] = []
    for operation in operations(coordinator):
        check_operation(operation, coordinator, CHECKS, failures, EXAMPLES)
    assert not failures, "\n\n".join(failures)
