"""Who may use each route: a declaration, not a check.

Every module that serves routes (a domain's ``endpoints``/``views``, ``telemed.app``) defines
a module-level ``ACCESS`` mapping each endpoint function's name to an ``Access``: the
identities that may use it and, where an object-level rule narrows it, that rule in words
(``scope``). Nothing here enforces anything; the rules themselves stay where they are
(``telemed.deps`` and each domain's ``auth.py``). The declaration exists so that
``tests/test_authorization_matrix.py`` can hold the server to it: every route must have one,
an identity not declared never gets a success, a declared one is never refused a page it
may read. A route added without a declaration fails that test, so access is decided when the
route is written, not discovered later.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Identity(StrEnum):
    """Who sends a request: nobody logged in, or a user of one of the roles
    (``telemed.accounts.models.Role``, whose values these repeat)."""

    anonymous = "anonymous"
    clinician = "clinician"
    specialist = "specialist"
    coordinator = "coordinator"
    admin = "admin"


ANONYMOUS = Identity.anonymous
CLINICIAN = Identity.clinician
SPECIALIST = Identity.specialist
COORDINATOR = Identity.coordinator
ADMIN = Identity.admin

#: Every role a logged-in user can have.
SIGNED_IN = (CLINICIAN, SPECIALIST, COORDINATOR, ADMIN)
#: Anyone, logged in or not.
EVERYONE = (ANONYMOUS, *SIGNED_IN)
#: The roles that take part in consults (a coordinator sees every consult).
CONSULT_ROLES = (CLINICIAN, SPECIALIST, COORDINATOR)


@dataclass(frozen=True, init=False)
class Access:
    """The identities a route is for, and the object-level rule within them, if any."""

    who: frozenset[Identity]
    scope: str

    def __init__(self, *who: Identity, scope: str = "") -> None:
        if not who:
            raise ValueError("an Access names at least one identity")
        object.__setattr__(self, "who", frozenset(who))
        object.__setattr__(self, "scope", scope)


# The declarations most routes share.

#: Anyone, logged in or not (the login pages, health checks, the service worker).
PUBLIC = Access(*EVERYONE)
#: Any logged-in user, about themselves or reference data.
ANY_USER = Access(*SIGNED_IN)
#: Any logged-in user, about their own account or their own items.
OWN = Access(*SIGNED_IN, scope="the user's own")
ADMINS = Access(ADMIN)
COORDINATORS = Access(COORDINATOR)
#: A specialist's own profile, availability, offers and rota.
SPECIALIST_OWN = Access(SPECIALIST, scope="the specialist's own")
#: Who may see a consult and what hangs off it (``consults.auth.can_view``); 404 otherwise.
CONSULT_READERS = Access(
    CLINICIAN,
    SPECIALIST,
    COORDINATOR,
    scope="who may see the consult: the requesting facility's clinicians, the specialists "
    "taking part in it, coordinators",
)
#: What only the clinicians of the facility that requested the consult do.
REQUESTING_CLINICIANS = Access(CLINICIAN, scope="the requesting facility's clinicians")
#: The consult's two sides: its clinicians and its assigned specialist.
CONSULT_SIDES = Access(
    CLINICIAN,
    SPECIALIST,
    scope="the requesting facility's clinicians and the consult's assigned specialist",
)
#: A note: written by the two sides, changed only by its author.
NOTE_AUTHOR = Access(CLINICIAN, SPECIALIST, scope="the note's author")
#: Inviting to and revoking from a consult's call (``consults.auth.can_invite``).
CALL_INVITERS = Access(
    SPECIALIST, COORDINATOR, scope="the consult's assigned specialist, coordinators"
)
#: Who may join a consult's call (``sessions.auth.call_role``): coordinators do not.
CALL_PARTICIPANTS = Access(
    CLINICIAN,
    SPECIALIST,
    scope="the requesting facility's clinicians, the assigned specialist, invited guests",
)
#: A resumable upload belongs to its uploader, who must still see the consult.
UPLOADER = Access(CLINICIAN, SPECIALIST, COORDINATOR, scope="the uploader's own upload")
#: An appointment's rules (``appointments.auth``): coordinators see it and may book a time,
#: the two sides change it and download its invitation.
APPOINTMENT_READERS = Access(
    CLINICIAN,
    SPECIALIST,
    COORDINATOR,
    scope="the appointment's specialist, the requesting facility's clinicians, coordinators",
)
APPOINTMENT_BOOKERS = Access(
    CLINICIAN,
    SPECIALIST,
    COORDINATOR,
    scope="the assigned specialist, the requesting facility's clinicians, coordinators",
)
APPOINTMENT_SIDES = Access(
    CLINICIAN,
    SPECIALIST,
    scope="the appointment's specialist and the requesting facility's clinicians",
)
#: The pre-call network test (``precall.auth.TESTERS``).
NETWORK_TESTERS = Access(CLINICIAN, SPECIALIST, scope="the user's own link")
#: The steps of a login in progress (the password given, the second factor pending): the
#: login's own cookie is the credential; a logged-in user is sent back to the login page.
LOGIN_STEP = Access(ANONYMOUS, scope="a login in progress")
