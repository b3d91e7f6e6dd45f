"""One error base class for the whole application.

Services raise these, and nothing here knows about HTTP beyond the status code each error
stands for: ``telemed.web.errors`` turns them into a JSON error body, a page, or whatever
a sub-application (FHIR) answers with. So a job or the command line can raise and catch
them without importing the web framework.

The message is English with named placeholders, marked with ``N_`` so that ``pybabel
extract`` finds it, and its values are passed apart
(``NotFound(N_("consult %(consult)s not found"), consult=7)``). It is translated where it is
shown (:meth:`TelemedError.shown`, in the reader's language, by ``telemed.web.errors`` and
the pages that show a form's refusal), not where it is raised: the service need not know who
reads it, and the audit trail, the logs and the command line keep the English
``message``. The machine-readable ``code`` never changes with the language.
"""

from __future__ import annotations

from typing import Any

from telemed.i18n import gettext


def _fill(text: str, params: dict[str, object]) -> str:
    return text % params if params else text


class Words(str):
    """A value of a message that is itself words to translate (a list of accepted file
    types), not data (a name, a number): ``shown`` translates it too. Marked with ``N_``
    where it is written, like the message."""


def _translated(params: dict[str, object]) -> dict[str, object]:
    return {k: gettext(v) if isinstance(v, Words) else v for k, v in params.items()}


class TelemedError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, **params: object) -> None:
        self.msgid = message
        self.params = params
        self.message = _fill(message, params)  # English: logs, audit rows, the CLI
        super().__init__(self.message)
        self.field = field

    def shown(self) -> str:
        """The message in the language in force (the reader's). A message not in the
        catalogue (not marked yet) is shown as written."""
        return _fill(gettext(self.msgid), _translated(self.params))


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

    def __init__(self, message: str, *, retry_after_seconds: int, **params: Any) -> None:
        super().__init__(message, **params)
        self.retry_after_seconds = retry_after_seconds


class ServiceBusy(TooManyRequests):
    """A shared resource of this process is at its limit (image decoding): 503 with
    ``Retry-After``, like a 429 but saying the server, not the client, is the cause."""

    status_code = 503
    code = "busy"
