"""One error base class for the whole application.

Services raise these, and nothing here knows about HTTP beyond the status code each error
stands for: ``telemed.web.errors`` turns them into a JSON error body, a page, or whatever
a sub-application (FHIR) answers with. So a job or the command line can raise and catch
them without importing the web framework.
"""

from __future__ import annotations


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


class ReauthRequired(Forbidden):
    """A sensitive action needs a recent proof of identity (``telemed.mfa``): pages send
    the browser to ``/reauth``; API clients call ``POST /api/v1/auth/reauth``."""

    code = "reauth_required"


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


class ServiceBusy(TooManyRequests):
    """A shared resource of this process is at its limit (image decoding): 503 with
    ``Retry-After``, like a 429 but saying the server, not the client, is the cause."""

    status_code = 503
    code = "busy"
