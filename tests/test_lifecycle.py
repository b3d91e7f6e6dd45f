"""The consult state machine, without a database."""

from __future__ import annotations

import itertools

import pytest

from telemed.consults.lifecycle import FINAL_STATES, TRANSITIONS, check_transition
from telemed.consults.models import ConsultState as S
from telemed.errors import InvalidTransition


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize(
    ("current", "target"), [(c, t) for c, ts in TRANSITIONS.items() for t in ts]
)
def test_listed_moves_are_allowed(current: S, target: S) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c in S for t in S if t not in TRANSITIONS[c]],
)
def test_other_moves_are_refused_naming_both_states(current: S, target: S) -> None:
    with pytest.raises(InvalidTransition) as raised:
        check_transition(current, target)
    assert f"'{current}'" in raised.value.message
    assert f"'{target}'" in raised.value.message


def test_architecture_path_from_draft_to_closed() -> None:
    path = [
        S.draft,
        S.requested,
        S.offered,
        S.accepted,
        S.scheduled,
        S.in_session,
        S.completed,
        S.follow_up_due,
        S.closed,
    ]
    for current, target in itertools.pairwise(path):
        check_transition(current, target)


def test_declined_offer_rematches_and_stuck_request_escalates() -> None:
    check_transition(S.offered, S.requested)
    check_transition(S.offered, S.escalated)
    check_transition(S.escalated, S.accepted)


def test_final_states() -> None:
    assert {S.closed, S.cancelled} == FINAL_STATES
    with pytest.raises(InvalidTransition, match="none \\(final state\\)"):
        check_transition(S.cancelled, S.requested)
