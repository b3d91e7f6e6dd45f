"""indexes for the coordinator's uptake indicators

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 07:30:00

The indicators (``telemed/uptake``) count rows of a period: consults by request time (and
by facility for dormant facilities), lifecycle events by state and time, offers, call
sessions, call events and outcomes by time. Each gets the index its range scan needs.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES: list[tuple[str, str, list[str]]] = [
    ("ix_consults_requested_at", "consults", ["requested_at"]),
    ("ix_consults_facility_requested", "consults", ["facility_id", "requested_at"]),
    ("ix_consult_events_to_state_at", "consult_events", ["to_state", "at"]),
    ("ix_consult_events_consult_state_at", "consult_events", ["consult_id", "to_state", "at"]),
    ("ix_consult_offers_offered_at", "consult_offers", ["offered_at"]),
    ("ix_call_sessions_started_at", "call_sessions", ["started_at"]),
    ("ix_call_session_events_kind_at", "call_session_events", ["kind", "at"]),
    ("ix_consult_outcomes_recorded_at", "consult_outcomes", ["recorded_at"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
