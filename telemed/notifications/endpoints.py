"""Notifications JSON API: your notifications and marking them read; the coordinators'
list of e-mails and SMS that failed or are being retried, and retrying one now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from telemed.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from telemed.notifications import service
from telemed.notifications.schemas import DeliveryPublic, NotificationPage, NotificationPublic
from telemed.validation import Id
from telemed.web.access import COORDINATORS, OWN
from telemed.web.errors import error_responses

router = APIRouter(tags=["notifications"])

ERRORS = error_responses(401, 403, 404, 422)


@router.get("/notifications", responses=ERRORS)
def my_notifications(
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int | None, Query(ge=1, le=100)] = None,
) -> NotificationPage:
    """Your notifications, newest first, with how many are unread. Reading them here does
    not mark them read: `POST /notifications/{id}/read` does."""
    found = service.my_notifications(db, user, page, page_size or settings.page_size)
    return NotificationPage(
        items=[NotificationPublic.model_validate(n) for n in found.items],
        total=found.total,
        unread=found.unread,
        page=found.page,
        page_size=found.page_size,
    )


@router.post("/notifications/{notification_id}/read", responses=ERRORS)
def mark_read(
    notification_id: Id, user: CurrentUser, db: SessionDep, now: NowDep
) -> NotificationPublic:
    """Mark one of your notifications read (someone else's is 404)."""
    found = service.mark_one_read(db, user, notification_id, now)
    return NotificationPublic.model_validate(found)


@router.get("/deliveries", responses=ERRORS)
def problem_deliveries(user: CurrentUser, db: SessionDep) -> list[DeliveryPublic]:
    """E-mails and SMS that failed or are waiting for another attempt, most recent first
    (coordinators)."""
    return [DeliveryPublic.model_validate(m) for m in service.problem_deliveries(db, user)]


@router.post("/deliveries/{message_id}/retry", responses=ERRORS)
def retry_delivery(
    message_id: Id, user: CurrentUser, db: SessionDep, now: NowDep
) -> DeliveryPublic:
    """Send a failed (or retrying) e-mail or SMS again at the next outbox run
    (coordinators). Check first that it did not arrive: a failed message may have been
    interrupted mid-send."""
    return DeliveryPublic.model_validate(service.retry_now(db, user, message_id, now))


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "my_notifications": OWN,
    "mark_read": OWN,
    "problem_deliveries": COORDINATORS,
    "retry_delivery": COORDINATORS,
}
