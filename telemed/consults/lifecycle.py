"""The consult lifecycle as a state machine (architecture page, section 3).

```
draft -> requested -> offered -> accepted -> scheduled -> in_session -> completed -> closed
                ^         |  (decline / offer expired: next candidate)       |
                |         v                                                   v
                +---- rematch ----> escalated (coordinator queue)        follow_up_due
side exits: cancelled (by clinician), no_show, answered_async (advice given by messages)
```

A ``requested`` consult without the patient's consent to share it (``telemed.consent``) is
"waiting for consent": not a state of its own, but the offers never move it to ``offered``
nor escalate it, and a coordinator cannot assign it, until a sharing consent is recorded
(docs/consent.md).

This module is pure: it only says which moves exist. ``telemed.consults.service.transition``
applies a move and records it.
"""

from __future__ import annotations

from telemed.consults.models import ConsultState as S
from telemed.errors import InvalidTransition
from telemed.i18n import N_

TRANSITIONS: dict[S, frozenset[S]] = {
    S.draft: frozenset({S.requested, S.cancelled}),
    S.requested: frozenset({S.offered, S.escalated, S.accepted, S.cancelled}),
    # Declined or expired offers go back to requested (rematch) or up to a coordinator.
    S.offered: frozenset({S.accepted, S.requested, S.escalated, S.cancelled}),
    S.escalated: frozenset({S.offered, S.accepted, S.requested, S.cancelled}),
    S.accepted: frozenset({S.scheduled, S.answered_async, S.requested, S.cancelled}),
    # scheduled -> completed: the session was held but the call had ended (a dropped line,
    # one side gone first) before the specialist ended the consult.
    S.scheduled: frozenset(
        {S.in_session, S.completed, S.no_show, S.requested, S.answered_async, S.cancelled}
    ),
    # A dropped call is not a dead end: back to scheduled, or on by messages.
    S.in_session: frozenset({S.completed, S.scheduled, S.answered_async}),
    S.no_show: frozenset({S.scheduled, S.requested, S.cancelled}),
    S.completed: frozenset({S.closed, S.follow_up_due}),
    S.answered_async: frozenset({S.closed, S.follow_up_due}),
    S.follow_up_due: frozenset({S.closed}),
    S.closed: frozenset(),
    S.cancelled: frozenset(),
}

# States in which a request is still waiting for a specialist: "time waiting" runs.
WAITING_STATES = frozenset({S.requested, S.offered, S.escalated})
# States after which nothing more happens on the consult.
FINAL_STATES = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


def allowed_targets(state: S) -> frozenset[S]:
    return TRANSITIONS[state]


def check_transition(current: S | str, target: S | str) -> None:
    """Raise ``InvalidTransition`` naming both states when the move does not exist."""
    current, target = S(current), S(target)
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final state)"
        raise InvalidTransition(
            N_("a consult in state '%(current)s' cannot become '%(target)s'; allowed: %(allowed)s"),
            current=current,
            target=target,
            allowed=allowed,
            field="state",
        )
